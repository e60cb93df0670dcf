/* Touchpoint support console: the live queue, and the open conversation's messages, typing
   and read receipts, over the agent socket /ws/support/ (protocol: chat/consumers.py).

   Every message has its conversation's sequence number: the page keeps the numbers it has
   shown, draws each message once in order, and on every (re)connect watches the
   conversation again from the last number it has without a gap, so nothing is lost and
   nothing comes twice. Posting goes through HTTP (the composer's form), so an answer is
   stored even while the socket reconnects. The DOM is built with textContent only.
   No third-party code. */
(function () {
  "use strict";

  var configNode = document.getElementById("support-config");
  if (!configNode) {
    return;
  }
  var config = JSON.parse(configNode.textContent);
  var S = config.strings;
  var convo = config.conversation || null;
  // the server's clock, so waiting times agree with what the server computed
  var clockOffset = Date.parse(config.serverNow) - Date.now();

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_match, key) {
      return values[key] === undefined || values[key] === null ? "" : String(values[key]);
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  // --- connection status ------------------------------------------------------------------

  var statusNode = document.getElementById("connection-status");

  function setStatus(state) {
    if (!statusNode) {
      return;
    }
    statusNode.dataset.state = state;
    statusNode.textContent =
      state === "open" ? S.connected : state === "reconnecting" ? S.reconnecting : "";
  }

  // --- the queue ---------------------------------------------------------------------------

  var queueList = document.getElementById("queue-list");
  var queueEmpty = document.getElementById("queue-empty");
  var queueCount = document.getElementById("queue-count");
  var baseTitle = document.title;

  function conversationUrl(id) {
    return config.conversationUrl.replace(/0\/$/, id + "/");
  }

  function stateText(p) {
    if (p.status === "waiting") {
      return S.waiting;
    }
    if (p.agent_id === config.agentId) {
      return S.with_you;
    }
    return fmt(S.with_agent, { agent: p.agent_name });
  }

  function waitingText(since) {
    if (!since) {
      return "";
    }
    var seconds = Math.max(0, Math.floor((Date.now() + clockOffset - Date.parse(since)) / 1000));
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var rest = seconds % 60;
    var mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
    return (hours ? hours + ":" : "") + mm + ":" + String(rest).padStart(2, "0");
  }

  function queueItem(p) {
    var li = document.getElementById("queue-item-" + p.id);
    if (li) {
      return li;
    }
    li = el("li", "queue-item");
    li.id = "queue-item-" + p.id;
    li.dataset.conversationId = String(p.id);
    var link = el("a", "queue-link");
    link.href = conversationUrl(p.id);
    link.appendChild(el("span", "queue-name"));
    link.appendChild(el("span", "queue-invoice"));
    link.appendChild(el("span", "queue-state"));
    link.appendChild(el("time", "queue-wait"));
    var unread = el("span", "queue-unread");
    unread.setAttribute("data-unread-count", "");
    link.appendChild(unread);
    li.appendChild(link);
    return li;
  }

  function queueUpsert(p) {
    if (!queueList) {
      return;
    }
    var existing = document.getElementById("queue-item-" + p.id);
    if (p.status === "closed") {
      if (existing) {
        existing.remove();
      }
      queueChanged();
      return;
    }
    var li = queueItem(p);
    li.dataset.status = p.status;
    li.dataset.unread = String(p.unread);
    li.dataset.agentId = p.agent_id === null ? "" : String(p.agent_id);
    li.dataset.waitingSince = p.waiting_since || "";
    li.classList.toggle("queue-mine", p.agent_id === config.agentId);
    li.classList.toggle("queue-current", Boolean(convo && convo.id === p.id));
    li.querySelector(".queue-name").textContent = p.customer_name;
    li.querySelector(".queue-invoice").textContent = p.invoice_number;
    li.querySelector(".queue-state").textContent = stateText(p);
    var wait = li.querySelector(".queue-wait");
    wait.dataset.waitingSince = p.waiting_since || "";
    if (p.waiting_since) {
      wait.setAttribute("datetime", p.waiting_since);
    } else {
      wait.removeAttribute("datetime");
    }
    wait.textContent = waitingText(p.waiting_since);
    var unread = li.querySelector(".queue-unread");
    unread.textContent = fmt(S.unread, { count: p.unread });
    unread.hidden = !p.unread;
    if (!existing) {
      queueList.appendChild(li);
    }
    queueChanged();
  }

  function queueChanged() {
    // the server's order: the longest waiting first, those not waiting for an answer last
    var items = Array.prototype.slice.call(queueList.children);
    items.sort(function (a, b) {
      var wa = a.dataset.waitingSince;
      var wb = b.dataset.waitingSince;
      if (wa && wb && wa !== wb) {
        return Date.parse(wa) - Date.parse(wb);
      }
      if (Boolean(wa) !== Boolean(wb)) {
        return wa ? -1 : 1;
      }
      return Number(a.dataset.conversationId) - Number(b.dataset.conversationId);
    });
    items.forEach(function (item) {
      queueList.appendChild(item);
    });
    if (queueCount) {
      queueCount.textContent = String(items.length);
    }
    if (queueEmpty) {
      queueEmpty.hidden = items.length > 0;
    }
    var waiting = items.filter(function (item) {
      return item.dataset.status === "waiting";
    }).length;
    document.title = (waiting ? "(" + waiting + ") " : "") + baseTitle;
  }

  function queueReload() {
    fetch(config.queueUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data || !queueList) {
          return;
        }
        var open = {};
        data.conversations.forEach(function (p) {
          open[p.id] = true;
          queueUpsert(p);
        });
        Array.prototype.slice.call(queueList.children).forEach(function (item) {
          if (!open[item.dataset.conversationId]) {
            item.remove();
          }
        });
        queueChanged();
      })
      .catch(function () {
        /* the next reconnect tries again */
      });
  }

  function tick() {
    document.querySelectorAll("time.queue-wait").forEach(function (node) {
      node.textContent = waitingText(node.dataset.waitingSince);
    });
  }

  // --- the conversation ----------------------------------------------------------------

  var list = document.getElementById("messages");
  var seen = new Set();
  var contiguous = 0; // every message up to this number is on the page
  var customerReadSeq = convo ? convo.customerReadSeq : 0;
  var lastReadSent = 0;
  var typingNode = document.getElementById("typing-indicator");
  var typingTimer = null;
  var changedNode = document.getElementById("conversation-changed");

  if (list) {
    list.querySelectorAll("li[data-seq]").forEach(function (li) {
      seen.add(Number(li.dataset.seq));
    });
    while (seen.has(contiguous + 1)) {
      contiguous += 1;
    }
  }

  function maxSeen() {
    var max = 0;
    seen.forEach(function (seq) {
      max = Math.max(max, seq);
    });
    return max;
  }

  function money(amount) {
    var locale = convo && convo.language === "sv" ? "sv-SE" : "en-GB";
    var number = new Intl.NumberFormat(locale, {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    }).format(Number(amount));
    return number + "\u00a0kr";
  }

  function messageNode(p) {
    var li = el("li", "message message-" + p.author);
    li.id = "message-" + p.seq;
    li.dataset.seq = String(p.seq);
    li.dataset.author = p.author;
    var meta = el("p", "message-meta");
    var label = p.author === "customer" ? S.customer : p.author === "system" ? S.system : p.agent_name;
    meta.appendChild(el("span", "message-author", label));
    meta.appendChild(document.createTextNode(" "));
    var time = el(
      "time",
      "",
      new Date(p.created_at).toLocaleTimeString(config.language, {
        hour: "2-digit",
        minute: "2-digit",
        timeZone: config.timeZone,
      })
    );
    time.setAttribute("datetime", p.created_at);
    meta.appendChild(time);
    li.appendChild(meta);
    if (p.quote) {
      var quote = el("blockquote", "message-quote");
      quote.dataset.quotePosition = String(p.quote.position);
      quote.appendChild(el("span", "quote-label", S.about_line + ":"));
      quote.appendChild(document.createTextNode(" "));
      quote.appendChild(el("span", "quote-title", p.quote.title));
      quote.appendChild(document.createTextNode(" "));
      quote.appendChild(el("span", "quote-amount", money(p.quote.amount)));
      quote.appendChild(document.createTextNode(" "));
      var show = el("a", "quote-show", S.show_line);
      show.href = "#invoice-line-" + p.quote.position;
      show.dataset.showLine = String(p.quote.position);
      quote.appendChild(show);
      li.appendChild(quote);
    }
    li.appendChild(el("p", "message-body", p.body));
    if (p.author !== "customer") {
      var receipt = el("p", "message-receipt", S.sent);
      receipt.dataset.read = "false";
      li.appendChild(receipt);
    }
    return li;
  }

  function addMessage(p) {
    if (!list || !convo || p.conversation !== convo.id || seen.has(p.seq)) {
      return;
    }
    var nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    var node = messageNode(p);
    var after = null; // the first message numbered after this one
    Array.prototype.some.call(list.children, function (child) {
      if (Number(child.dataset.seq) > p.seq) {
        after = child;
        return true;
      }
      return false;
    });
    list.insertBefore(node, after);
    seen.add(p.seq);
    while (seen.has(contiguous + 1)) {
      contiguous += 1;
    }
    markRead(customerReadSeq);
    if (p.author === "customer") {
      showTyping(false);
    }
    if (p.quote) {
      highlightLine(p.quote.position, false);
    }
    if (nearBottom || p.author !== "customer") {
      list.scrollTop = list.scrollHeight;
    }
    sendRead();
  }

  function markRead(seq) {
    customerReadSeq = Math.max(customerReadSeq, seq);
    if (!list) {
      return;
    }
    list.querySelectorAll("li[data-author]").forEach(function (li) {
      var receipt = li.querySelector(".message-receipt");
      if (!receipt) {
        return;
      }
      var read = Number(li.dataset.seq) <= customerReadSeq;
      if ((receipt.dataset.read === "true") !== read) {
        receipt.dataset.read = read ? "true" : "false";
        receipt.textContent = read ? S.read : S.sent;
      }
    });
  }

  function showTyping(on) {
    if (!typingNode) {
      return;
    }
    clearTimeout(typingTimer);
    typingNode.hidden = !on;
    if (on) {
      typingTimer = setTimeout(function () {
        typingNode.hidden = true;
      }, 5000);
    }
  }

  function highlightLine(position, focus) {
    var line = document.getElementById("invoice-line-" + position);
    if (!line) {
      return;
    }
    document.querySelectorAll(".line-highlight").forEach(function (other) {
      other.classList.remove("line-highlight");
    });
    line.classList.add("line-highlight", "line-quoted");
    if (focus) {
      line.scrollIntoView({ block: "center", behavior: "smooth" });
      line.focus({ preventScroll: true });
      return;
    }
    // only the invoice column scrolls: the agent's place in the chat stays where it is
    var side = line.closest(".invoice-side");
    if (side && side.scrollHeight > side.clientHeight) {
      side.scrollTop +=
        line.getBoundingClientRect().top - side.getBoundingClientRect().top - side.clientHeight / 2;
    }
  }

  function sendRead() {
    // the agent holding the conversation reads it; others only look
    if (!convo || !convo.holder || document.visibilityState !== "visible") {
      return;
    }
    var seq = maxSeen();
    if (seq > lastReadSent && send({ type: "read", seq: seq })) {
      lastReadSent = seq;
    }
  }

  function onConversationFrame(p) {
    queueUpsert(p);
    if (!convo || p.id !== convo.id) {
      return;
    }
    markRead(p.customer_read_seq);
    if (changedNode && (p.status !== convo.status || p.agent_id !== convo.agentId)) {
      changedNode.hidden = false; // claimed, transferred or closed elsewhere: reload to act
    }
  }

  // --- the socket ------------------------------------------------------------------------

  var socket = null;
  var attempts = 0;
  var pingTimer = null;

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    socket.send(JSON.stringify(frame));
    return true;
  }

  function handle(frame) {
    switch (frame.type) {
      case "hello":
        // The socket now gets every queue change: read the queue once more, for what changed
        // between the page being drawn (or the connection lost) and this moment.
        queueReload();
        if (convo) {
          send({ type: "watch", conversation: convo.id, after: contiguous });
        }
        sendRead();
        break;
      case "queue":
        // the queue's changes since the last such frame, the newest summary of each
        frame.conversations.forEach(onConversationFrame);
        break;
      case "message":
        addMessage(frame);
        break;
      case "typing":
        if (convo && frame.conversation === convo.id && frame.who === "customer") {
          showTyping(true);
        }
        break;
      case "read":
        if (convo && frame.conversation === convo.id && frame.side === "customer") {
          markRead(frame.seq);
        }
        break;
      default:
        break;
    }
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + config.socketPath);
    socket.addEventListener("open", function () {
      attempts = 0;
      setStatus("open");
      clearInterval(pingTimer);
      pingTimer = setInterval(function () {
        send({ type: "ping" });
      }, 30000);
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (_error) {
        return;
      }
      handle(frame);
    });
    socket.addEventListener("close", function (event) {
      clearInterval(pingTimer);
      if (event.code === 4403) {
        location.reload(); // logged out meanwhile: the server shows the login
        return;
      }
      setStatus("reconnecting");
      var delay = Math.min(30000, 1000 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
      attempts += 1;
      setTimeout(connect, delay);
    });
  }

  // --- the composer and the page's controls ------------------------------------------------

  var composer = document.getElementById("composer");
  var input = document.getElementById("composer-input");
  var sendButton = document.getElementById("composer-send");
  var errorNode = document.getElementById("composer-error");
  var lastTyping = 0;

  function showError(text) {
    if (errorNode) {
      errorNode.textContent = text;
      errorNode.hidden = !text;
    }
  }

  if (composer && input) {
    composer.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!input.value.trim()) {
        input.focus();
        return;
      }
      sendButton.disabled = true;
      fetch(composer.action, {
        method: "POST",
        body: new FormData(composer),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.json().then(function (data) {
            return { ok: response.ok, data: data };
          });
        })
        .then(function (result) {
          if (result.ok) {
            input.value = "";
            showError("");
            addMessage(result.data);
          } else {
            showError(result.data.message || S.send_failed);
          }
        })
        .catch(function () {
          showError(S.send_failed);
        })
        .finally(function () {
          sendButton.disabled = false;
          input.focus();
        });
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });
    input.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastTyping > 2000 && send({ type: "typing" })) {
        lastTyping = now;
      }
    });
  }

  document.querySelectorAll("button.canned-reply").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!input) {
        return;
      }
      var body = button.dataset.body || "";
      input.value = input.value.trim() ? input.value.replace(/\s+$/, "") + "\n\n" + body : body;
      var details = document.getElementById("canned-replies");
      if (details) {
        details.open = false;
      }
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    });
  });

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target.closest("[data-show-line]") : null;
    if (target) {
      event.preventDefault();
      highlightLine(target.dataset.showLine, true);
    }
  });

  // a review's confirm button makes one request, however often it is clicked
  document.querySelectorAll("form.review").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      // the button that sent it (a review may also hold another form's button)
      var button = event.submitter || form.querySelector("button[type=submit]:not([form])");
      if (button) {
        setTimeout(function () {
          button.disabled = true;
        }, 0);
      }
    });
  });

  document.addEventListener("visibilitychange", sendRead);

  // --- start ---------------------------------------------------------------------------

  if (list) {
    list.scrollTop = list.scrollHeight;
    var quotes = list.querySelectorAll("[data-quote-position]");
    if (quotes.length) {
      highlightLine(quotes[quotes.length - 1].dataset.quotePosition, false);
    }
  }
  if (queueList) {
    queueChanged();
  }
  setInterval(tick, 1000);
  setStatus("connecting");
  connect();
})();
