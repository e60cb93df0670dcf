/* The customer's chat panel on the invoice page (templates/chat/panel.html, chat/panel.py).

   Without this script the panel is a plain form and a server-rendered list. With it:
   - posting goes over the socket when it is open ({"type": "post", "id", "body", "line"},
     answered "posted" or "post_refused"), otherwise through fetch (POST, X-CSRFToken,
     Accept: application/json), so it works while the socket is down; with no answer from
     the socket within a few seconds, or the socket closing, the message goes by fetch with
     the same id, which the server stores once; a refusal's message shows next to the field
     and the typed text stays;
   - a websocket to /ws/chat/<token>/ (the token is in the page's own path, never written in
     the page) brings messages, typing, read receipts and the conversation's state; on open
     it sends {"type": "resume", "conversation": id|null, "after": last seq seen};
   - while the socket is down: "Reconnecting…", reconnects with exponential backoff and
     jitter, and polls chat/messages/list/ every few seconds;
   - "Ask about this line" quotes the line above the field and posts line=<id>;
   - {"type": "invoice_changed", "what": …} refreshes the page's main content except this
     panel, and says what changed;
   - {"type": "payments_changed"} (a payment booked on the invoice, a refund) is passed on as
     the document event "touchpoint:payments-changed", which static/payment.js answers by
     reading the payment summary again. A page with money open (its summary has
     data-payments-live) opens the socket at once, with or without a conversation.
   The protocol is chat/consumers.py's docstring. Texts come from the server in the page's
   language; anything from a message goes in with textContent, never as markup. */
(function () {
  "use strict";

  var panel = document.getElementById("chat");
  if (!panel || !window.fetch || !window.URLSearchParams || !panel.closest) return;

  var PING_MS = 30000; // heartbeat: the page is open (answers are not also sent by SMS)
  var POLL_MS = 4000; // the list endpoint, while the socket is down
  var TYPING_EVERY_MS = 3000; // at most one typing frame per this while the customer types
  var TYPING_SHOWN_MS = 6000; // "Support is writing…" without a new typing frame
  var BACKOFF_MIN_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var SOCKET_POST_WAIT_MS = 5000; // for the socket's answer to a post, then it goes by fetch

  var texts = readJson("chat-texts");
  var state = readJson("chat-state");
  var list = byId("chat-messages");
  var log = list.parentNode;
  var form = byId("chat-form");
  var field = byId("chat-body");
  var lineInput = byId("chat-line");
  var askBox = byId("chat-ask");
  var errorBox = byId("chat-error");
  var sendButton = byId("chat-send");
  var statusBox = byId("chat-status");
  var connectionBox = byId("chat-connection");
  var announceBox = byId("chat-announce");
  var typingBox = byId("chat-typing");
  var offlineBox = byId("chat-offline");
  var ratingBox = byId("chat-rating");
  var ratingForm = byId("chat-rating-form");
  var ratingError = byId("chat-rating-error");
  var thanksBox = byId("chat-thanks");
  var locale = state.language === "sv" ? "sv-SE" : "en-GB";

  var socket = null;
  var attempts = 0;
  var reconnectTimer = null;
  var pollTimer = null;
  var pingTimer = null;
  var typingTimer = null;
  var lastTypingSent = 0;
  var readSent = 0;
  var onScreen = !("IntersectionObserver" in window);
  var gone = false; // the link no longer opens the invoice: stop trying
  var seen = {}; // seq -> true for the messages of the current conversation on the page
  var posting = {}; // message id -> what awaits the socket's answer to its post

  Array.prototype.forEach.call(list.children, function (item) {
    seen[Number(item.getAttribute("data-seq"))] = true;
  });

  function byId(id) {
    return document.getElementById(id);
  }

  function readJson(id) {
    var node = byId(id);
    return node ? JSON.parse(node.textContent) : {};
  }

  function show(node, on) {
    node.hidden = !on;
  }

  function fill(template, name) {
    // a function replacement: a name with "$&" in it stays as it is
    return template.replace("{name}", function () {
      return name;
    });
  }

  function element(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined && content !== null) node.textContent = content;
    return node;
  }

  function csrfToken(someForm) {
    var input = someForm.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function timeText(iso) {
    try {
      return new Intl.DateTimeFormat(locale, {
        hour: "2-digit",
        minute: "2-digit",
        timeZone: "Europe/Stockholm",
      }).format(new Date(iso));
    } catch (error) {
      return "";
    }
  }

  function amountText(amount) {
    var value = Number(amount);
    if (!isFinite(value)) return String(amount);
    var formatted = new Intl.NumberFormat(locale, {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2,
    }).format(value);
    return formatted + "\u00a0kr";
  }

  // --- messages ----------------------------------------------------------------------------

  function quoteNode(title, amount) {
    var quote = element("p", "chat-quote");
    quote.appendChild(element("span", "chat-quote-label", texts.about_line + ":"));
    quote.appendChild(document.createTextNode(" "));
    quote.appendChild(element("span", "chat-quote-title", title));
    quote.appendChild(document.createTextNode(" "));
    quote.appendChild(element("span", "chat-quote-amount", amount));
    return quote;
  }

  function authorOf(message) {
    return ["customer", "agent", "system"].indexOf(message.author) >= 0 ? message.author : "system";
  }

  function whoText(message) {
    var author = authorOf(message);
    if (author === "customer") return texts.you;
    if (author === "agent" && message.agent_name) return fill(texts.support_named, message.agent_name);
    return texts.support;
  }

  /* The same markup as templates/chat/panel.html. */
  function messageItem(message) {
    var item = element("li", "chat-msg chat-msg-" + authorOf(message));
    item.setAttribute("data-seq", String(message.seq));
    var meta = element("p", "chat-meta");
    meta.appendChild(element("span", "chat-who", whoText(message)));
    meta.appendChild(document.createTextNode(" "));
    var time = element("time", null, timeText(message.created_at));
    time.setAttribute("datetime", String(message.created_at));
    meta.appendChild(time);
    item.appendChild(meta);
    if (message.quote) {
      item.appendChild(quoteNode(String(message.quote.title), amountText(message.quote.amount)));
    }
    item.appendChild(element("p", "chat-body", String(message.body)));
    return item;
  }

  function addMessage(message) {
    if (typeof message.seq !== "number") return;
    if (state.conversation !== null && message.conversation < state.conversation) return;
    if (message.conversation !== state.conversation) startConversation(message.conversation);
    if (seen[message.seq]) return;
    seen[message.seq] = true;
    var next = null;
    for (var i = 0; i < list.children.length; i++) {
      if (Number(list.children[i].getAttribute("data-seq")) > message.seq) {
        next = list.children[i];
        break;
      }
    }
    list.insertBefore(messageItem(message), next);
    if (message.seq > state.lastSeq) state.lastSeq = message.seq;
    if (message.author !== "customer") stopTyping();
    // an agent answers having read everything before the answer (chat_message_post_agent)
    if (message.author === "agent" && message.seq > state.agentReadSeq) state.agentReadSeq = message.seq;
    showReadMarks();
    sendRead();
  }

  /* The customer wrote after the last conversation was closed: a new one begins. */
  function startConversation(id) {
    state.conversation = id;
    state.lastSeq = 0;
    state.agentReadSeq = 0;
    state.rated = false;
    readSent = 0;
    seen = {};
    while (list.firstChild) list.removeChild(list.firstChild);
    show(thanksBox, false);
    setStatus("waiting", "");
  }

  function setStatus(status, agentName) {
    state.status = status;
    var words = "";
    if (status === "waiting") words = texts.waiting;
    else if (status === "assigned") words = agentName ? fill(texts.assigned, agentName) : texts.assigned_unnamed;
    else if (status === "closed") words = texts.closed;
    statusBox.textContent = words;
    show(statusBox, !!words);
    if (status === "closed" && !state.rated) {
      ratingForm.elements.conversation.value = String(state.conversation);
      show(ratingBox, true);
    } else {
      show(ratingBox, false);
    }
  }

  function showReadMarks() {
    Array.prototype.forEach.call(list.querySelectorAll("li.chat-msg-customer"), function (item) {
      var seq = Number(item.getAttribute("data-seq"));
      if (seq <= state.agentReadSeq && !item.querySelector(".chat-read")) {
        item.appendChild(element("p", "chat-read", texts.read));
      }
    });
  }

  function stopTyping() {
    window.clearTimeout(typingTimer);
    typingBox.textContent = "";
  }

  // --- frames from the socket (and the list endpoint) --------------------------------------

  function onConversation(summary) {
    if (state.conversation !== null && summary.id < state.conversation) return;
    if (summary.id !== state.conversation) {
      if (state.conversation === null) state.conversation = summary.id;
      else startConversation(summary.id);
    }
    setStatus(summary.status, summary.agent_name);
  }

  function onTyping(frame) {
    if (frame.who !== "agent" || frame.conversation !== state.conversation) return;
    typingBox.textContent = texts.typing;
    window.clearTimeout(typingTimer);
    typingTimer = window.setTimeout(stopTyping, TYPING_SHOWN_MS);
  }

  function onRead(frame) {
    if (frame.side !== "agent" || frame.conversation !== state.conversation) return;
    if (frame.seq > state.agentReadSeq) state.agentReadSeq = frame.seq;
    showReadMarks();
  }

  function dispatch(frame) {
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "hello") show(offlineBox, !frame.agents_online);
    else if (frame.type === "message") addMessage(frame);
    else if (frame.type === "typing") onTyping(frame);
    else if (frame.type === "read") onRead(frame);
    else if (frame.type === "conversation") onConversation(frame);
    else if (frame.type === "invoice_changed") refreshInvoice(frame.what);
    else if (frame.type === "payments_changed") {
      document.dispatchEvent(new CustomEvent("touchpoint:payments-changed"));
    }
    else if (frame.type === "posted") answered(frame.id, { ok: true, payload: null });
    else if (frame.type === "post_refused") {
      answered(frame.id, { ok: false, payload: { message: frame.message } });
    }
  }

  // --- the socket ----------------------------------------------------------------------------

  function socketUrl() {
    var token = location.pathname.split("/")[2] || ""; // /i/<token>/
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + "/ws/chat/" + encodeURIComponent(token) + "/";
  }

  function send(frame) {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify(frame));
  }

  function connect() {
    if (gone || socket || reconnectTimer) return;
    if (!window.WebSocket) {
      startPolling();
      return;
    }
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (error) {
      disconnected();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      attempts = 0;
      connectionBox.textContent = "";
      stopPolling();
      send({ type: "resume", conversation: state.conversation, after: state.lastSeq });
      window.clearInterval(pingTimer);
      pingTimer = window.setInterval(function () {
        send({ type: "ping" });
      }, PING_MS);
      readSent = 0;
      sendRead();
    };
    ws.onmessage = function (event) {
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      dispatch(frame);
    };
    ws.onclose = function (event) {
      if (socket === ws) socket = null;
      window.clearInterval(pingTimer);
      Object.keys(posting).forEach(function (id) {
        answered(id, null); // unanswered: they go by fetch
      });
      if (event.code === 4404) {
        // the link was stopped or has expired: the page itself says so
        gone = true;
        stopPolling();
        window.location.reload();
        return;
      }
      if (event.code === 4429) attempts = Math.max(attempts, 5); // guessed too often: wait long
      disconnected();
    };
  }

  /* Never an error: the page says it is reconnecting, polls meanwhile, and tries again after
     1, 2, 4 … 30 s, each wait drawn between half and all of it (so a restarted server is not
     met by every page at once). */
  function disconnected() {
    if (gone) return;
    connectionBox.textContent = texts.reconnecting;
    startPolling();
    if (reconnectTimer) return;
    var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempts));
    attempts += 1;
    reconnectTimer = window.setTimeout(function () {
      reconnectTimer = null;
      connect();
    }, ceiling / 2 + Math.random() * (ceiling / 2));
  }

  function startPolling() {
    if (pollTimer || gone) return;
    pollTimer = window.setInterval(poll, POLL_MS);
  }

  function stopPolling() {
    window.clearInterval(pollTimer);
    pollTimer = null;
  }

  function poll() {
    if (state.conversation === null) return;
    var query = new URLSearchParams();
    query.append("conversation", String(state.conversation));
    query.append("after", String(state.lastSeq));
    fetch(state.listUrl + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (response.status === 404) {
          gone = true;
          stopPolling();
        }
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data || !data.conversation) return;
        if (data.conversation.id !== state.conversation) startConversation(data.conversation.id);
        data.messages.forEach(addMessage);
        setStatus(data.conversation.status, data.conversation.agent_name);
      })
      .catch(function () {});
  }

  function sendRead() {
    if (!onScreen || document.visibilityState === "hidden") return;
    if (state.lastSeq > readSent && socket && socket.readyState === 1) {
      readSent = state.lastSeq;
      send({ type: "read", seq: state.lastSeq });
    }
  }

  if (!onScreen) {
    new IntersectionObserver(function (entries) {
      onScreen = entries[entries.length - 1].isIntersecting;
      sendRead();
    }).observe(log);
  }
  document.addEventListener("visibilitychange", sendRead);

  // --- posting -------------------------------------------------------------------------------

  function showError(box, input, message) {
    box.textContent = message;
    show(box, true);
    if (input) input.setAttribute("aria-invalid", "true");
  }

  function clearError() {
    errorBox.textContent = "";
    show(errorBox, false);
    field.removeAttribute("aria-invalid");
  }

  function post(someForm, body) {
    return fetch(someForm.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": csrfToken(someForm),
        Accept: "application/json",
        "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
      },
      body: body.toString(),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return null;
        })
        .then(function (payload) {
          return { ok: response.ok, payload: payload };
        });
    });
  }

  function messageId() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 14);
  }

  /* Resolves with {ok, payload} when the socket answers, or with null when it is not open,
     does not answer in time, or closes first: then the post goes by fetch. */
  function postOverSocket(id, text, line) {
    if (!socket || socket.readyState !== 1) return Promise.resolve(null);
    return new Promise(function (resolve) {
      var timer = window.setTimeout(function () {
        answered(id, null);
      }, SOCKET_POST_WAIT_MS);
      posting[id] = function (result) {
        window.clearTimeout(timer);
        resolve(result);
      };
      send({ type: "post", id: id, body: text, line: line || null, lang: state.language });
    });
  }

  function answered(id, result) {
    var done = posting[id];
    if (!done) return;
    delete posting[id];
    done(result);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = field.value;
    if (!text.trim()) {
      showError(errorBox, field, texts.empty);
      field.focus();
      return;
    }
    var id = messageId();
    var body = new URLSearchParams();
    body.append("body", text);
    if (lineInput.value) body.append("line", lineInput.value);
    body.append("client_id", id);
    sendButton.disabled = true;
    connect();
    postOverSocket(id, text, lineInput.value)
      .then(function (result) {
        return result || post(form, body);
      })
      .then(function (result) {
        var message = result.payload;
        if (result.ok) {
          if (field.value === text) field.value = "";
          clearQuote();
          clearError();
          forgetAsked();
          if (message && message.type === "message") addMessage(message);
        } else {
          showError(errorBox, field, (message && message.message) || texts.send_failed);
        }
      })
      .catch(function () {
        showError(errorBox, field, texts.send_failed);
      })
      .then(function () {
        sendButton.disabled = false;
        field.focus();
      });
  });

  field.addEventListener("input", function () {
    connect();
    var now = Date.now();
    if (now - lastTypingSent < TYPING_EVERY_MS || !field.value.trim()) return;
    lastTypingSent = now;
    send({ type: "typing" });
  });

  ratingForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = new URLSearchParams(new FormData(ratingForm));
    post(ratingForm, body)
      .then(function (result) {
        if (result.ok) {
          state.rated = true;
          show(ratingBox, false);
          show(ratingError, false);
          show(thanksBox, true);
          thanksBox.focus();
        } else {
          showError(ratingError, null, (result.payload && result.payload.message) || texts.rating_failed);
        }
      })
      .catch(function () {
        showError(ratingError, null, texts.rating_failed);
      });
  });

  // --- "Ask about this line" -----------------------------------------------------------------

  function textOf(scope, selector) {
    var node = scope ? scope.querySelector(selector) : null;
    return node ? node.textContent.trim() : "";
  }

  function setQuote(lineId, title, amount) {
    lineInput.value = lineId;
    askBox.querySelector(".chat-quote-title").textContent = title;
    askBox.querySelector(".chat-quote-amount").textContent = amount;
    show(askBox, true);
  }

  function clearQuote() {
    lineInput.value = "";
    show(askBox, false);
  }

  /* Sent: a reload should not quote the line again (?ask=) or repeat a refusal (?chat_error=). */
  function forgetAsked() {
    if (!window.history || !history.replaceState || !/[?&](ask|chat_error)=/.test(location.search)) return;
    var params = new URLSearchParams(location.search);
    params.delete("ask");
    params.delete("chat_error");
    history.replaceState(history.state, "", location.pathname + "?" + params.toString() + location.hash);
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var ask = target.closest("a[data-ask-line]");
    if (ask) {
      event.preventDefault();
      var line = ask.closest("li");
      setQuote(ask.getAttribute("data-ask-line"), textOf(line, ".line-title"), textOf(line, ".line-amount"));
      askBox.scrollIntoView({ block: "center" });
      field.focus({ preventScroll: true });
      connect();
      return;
    }
    if (target.closest("[data-chat-unquote]")) {
      event.preventDefault();
      clearQuote();
      field.focus();
    }
  });

  // --- the invoice changed (a credit note from the chat) ---------------------------------------

  /* Fetch the page again and put its main content in place of ours, all but this panel
     (which keeps its state); our own server's markup, not a message's text. ``what`` (a
     credit note, a postponement, an instalment plan, a dispute) picks the words said. */
  function refreshInvoice(what) {
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var source = fresh.querySelector("main .stack");
        var target = panel.parentNode;
        if (!source || !target) return;
        Array.prototype.slice.call(target.children).forEach(function (child) {
          if (child !== panel) target.removeChild(child);
        });
        var beforePanel = true;
        Array.prototype.slice.call(source.children).forEach(function (child) {
          if (child.id === panel.id) {
            beforePanel = false;
            return;
          }
          var node = document.importNode(child, true);
          if (beforePanel) target.insertBefore(node, panel);
          else target.appendChild(node);
        });
        announceBox.textContent = texts["invoice_updated_" + what] || texts.invoice_updated;
      })
      .catch(function () {});
  }

  // --- start -------------------------------------------------------------------------------

  // An open conversation listens at once, and so does a page with money open (a payment may
  // be booked while it is open); otherwise the socket opens when the customer turns to the
  // panel (focus in it, or "Ask about this line").
  if (state.conversation !== null && state.status !== "closed") connect();
  else if (document.querySelector("[data-payments-live]")) connect();
  panel.addEventListener("focusin", connect);
})();
