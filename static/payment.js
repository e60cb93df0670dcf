/* The invoice page's payments: paying by card, and the payment summary kept up to date
   (templates/invoices/page/summary.html, invoices/page.py, invoices/views.py).

   Live summary: while money is open the summary carries data-payments-live, so the chat's
   socket (static/chat.js) opens at once, with or without a conversation. When a payment is
   booked on the invoice (card, bankgiro file, matched by hand) or money goes back to a card,
   the socket hears {"type": "payments_changed"} and chat.js passes it on as the document
   event "touchpoint:payments-changed". Then the summary is read again (summary/, through the
   page's own link) and put in place of this one, and a live region says the invoice was
   updated. After a card payment went through the summary is also read every few seconds for
   a while, so the payer sees it turn paid even when the socket is down.

   Paying by card: "Pay … by card" loads Stripe.js (only then: nothing of Stripe's is loaded
   for a page that does not pay by card) and mounts Stripe's Payment Element for a card, so
   the card details go from the customer's browser to Stripe and never to us. On "Pay",
   Stripe.js makes a payment method of the card (stripe.createPaymentMethod), whose id is
   posted to pay/card/ (CSRF token from its cookie): the server makes and confirms a
   PaymentIntent for the open amount under a saved idempotency key, and answers the
   attempt's status; while the card holder's bank asks them to confirm (3-D Secure) it also
   sends the client secret, and Stripe.js asks them. The result is booked from Stripe's
   webhook, never from this page.

   Where Stripe.js has no Payment Element (localstripe's stand-in, which the end-to-end tests
   run against: the card Element and tokens only), the page mounts the card Element instead
   and posts a card token; the server puts it on a customer and goes on the same way
   (invoices.services.card_payments). */
(function () {
  "use strict";

  if (!window.fetch || !window.DOMParser || !window.Promise) return;

  var POLL_MS = 3000; // after a card payment went through, until it is booked
  var POLL_TIMES = 20;

  var live = readJson("payments-live"); // {summaryUrl, updated}, kept after the page is paid
  var announcer = null;
  var stripe = null;
  var card = null;
  var elements = null;
  var paymentElement = false; // Stripe's Payment Element, where its Stripe.js has one
  var stripeLoading = null;
  var busy = false;
  var pollTimer = null;

  function byId(id) {
    return document.getElementById(id);
  }

  function readJson(id) {
    var node = byId(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  /* A live region outside the summary (which is replaced), for what changed. */
  function announce(text) {
    if (!announcer) {
      announcer = document.createElement("p");
      announcer.className = "visually-hidden";
      announcer.setAttribute("role", "status");
      document.querySelector("main").appendChild(announcer);
    }
    announcer.textContent = "";
    window.setTimeout(function () {
      announcer.textContent = text;
    }, 50);
  }

  // --- the live summary ------------------------------------------------------------------------

  /* What a person reads as the summary's state: its status, the amount and what was paid. */
  function signature(section) {
    return ["p.status", ".amount-value", ".paid-note"]
      .map(function (selector) {
        var node = section.querySelector(selector);
        return node ? node.textContent.trim() : "";
      })
      .join("|");
  }

  /* Read the summary again and put it in place when it says something new. */
  function refreshSummary() {
    if (!live) return Promise.resolve(false);
    return fetch(live.summaryUrl, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        var current = byId("summary");
        if (html === null || !current) return false;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("summary");
        if (!fresh || signature(fresh) === signature(current)) return false;
        current.parentNode.replaceChild(document.importNode(fresh, true), current);
        card = null; // its field went with the old summary
        showCardOption();
        announce(live.updated);
        stopPolling();
        return true;
      })
      .catch(function () {
        return false;
      });
  }

  function pollUntilBooked() {
    stopPolling();
    var left = POLL_TIMES;
    pollTimer = window.setInterval(function () {
      left -= 1;
      if (left <= 0) stopPolling();
      refreshSummary();
    }, POLL_MS);
  }

  function stopPolling() {
    window.clearInterval(pollTimer);
    pollTimer = null;
  }

  document.addEventListener("touchpoint:payments-changed", refreshSummary);

  // --- paying by card --------------------------------------------------------------------------

  function cardConfig() {
    return readJson("card-config");
  }

  function showCardOption() {
    var box = byId("card-pay");
    if (box && cardConfig()) box.hidden = false;
  }

  function loadStripe(config) {
    if (window.Stripe) return Promise.resolve();
    if (!stripeLoading) {
      stripeLoading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = config.js;
        script.onload = resolve;
        script.onerror = function () {
          stripeLoading = null;
          reject(new Error("Stripe.js did not load"));
        };
        document.head.appendChild(script);
      });
    }
    return stripeLoading;
  }

  function setStatus(text) {
    var node = byId("card-status");
    if (node) node.textContent = text;
  }

  function showError(text) {
    var node = byId("card-error");
    if (!node) return;
    node.textContent = text || "";
    node.hidden = !text;
  }

  function openCardForm() {
    var config = cardConfig();
    var form = byId("card-form");
    var opener = byId("card-open");
    if (!config || !form) return;
    form.hidden = false;
    if (opener) opener.setAttribute("aria-expanded", "true");
    if (card) return;
    loadStripe(config)
      .then(function () {
        if (!stripe) stripe = window.Stripe(config.key, { locale: config.locale });
        // (Stripe.js with the Payment Element has both; a stand-in may have a bare
        // createPaymentMethod)
        paymentElement =
          typeof stripe.handleNextAction === "function" &&
          typeof stripe.createPaymentMethod === "function";
        if (paymentElement) {
          elements = stripe.elements({
            mode: "payment",
            amount: config.amountOre,
            currency: config.currency,
            paymentMethodCreation: "manual",
            paymentMethodTypes: ["card"],
            locale: config.locale,
          });
          card = elements.create("payment", { wallets: { applePay: "never", googlePay: "never" } });
        } else {
          elements = stripe.elements({ locale: config.locale });
          card = elements.create("card", { hidePostalCode: true });
        }
        card.mount("#card-element");
      })
      .catch(function () {
        showError(config.texts.unavailable);
      });
  }

  function post(url, fields) {
    var body = new URLSearchParams();
    Object.keys(fields).forEach(function (name) {
      body.append(name, fields[name]);
    });
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": csrfToken(),
        Accept: "application/json",
        "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
      },
      body: body.toString(),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (answer) {
          if (!response.ok) throw { message: answer.message };
          return answer;
        });
    });
  }

  /* The card as Stripe.js hands it over: a payment method's id (Payment Element) or a card
     token's (card Element). */
  function cardForStripe(texts) {
    if (paymentElement) {
      return elements
        .submit()
        .then(function (checked) {
          if (checked.error) throw { message: checked.error.message || texts.card_invalid };
          return stripe.createPaymentMethod({ elements: elements });
        })
        .then(function (result) {
          if (result.error) throw { message: result.error.message || texts.card_invalid };
          return result.paymentMethod.id;
        });
    }
    return stripe.createToken(card).then(function (result) {
      if (result.error) throw { message: result.error.message || texts.card_invalid };
      return result.token.id;
    });
  }

  /* The bank asks the card holder to confirm (3-D Secure): Stripe.js asks them. */
  function confirmWithBank(answer, texts) {
    var asked = paymentElement
      ? stripe.handleNextAction({ clientSecret: answer.client_secret })
      : stripe.confirmCardPayment(answer.client_secret);
    return asked.then(function (result) {
      if (result.error) throw { message: result.error.message || texts.declined };
      return { status: "processing" };
    });
  }

  function pay() {
    var config = cardConfig();
    var submit = byId("card-submit");
    if (!config || !stripe || !card || busy) return;
    var texts = config.texts;
    busy = true;
    if (submit) submit.disabled = true;
    showError("");
    setStatus(texts.working);
    cardForStripe(texts)
      .then(function (id) {
        return post(config.startUrl, { token: id });
      })
      .then(function (answer) {
        return answer.status === "requires_action" ? confirmWithBank(answer, texts) : answer;
      })
      .then(function (answer) {
        if (answer.status === "failed") throw { message: answer.message || texts.declined };
        // it went through: Stripe's webhook books it, and the summary follows
        var form = byId("card-form");
        var opener = byId("card-open");
        if (form) form.hidden = true;
        if (opener) opener.hidden = true;
        setStatus(texts.received);
        pollUntilBooked();
      })
      .catch(function (error) {
        setStatus("");
        showError((error && error.message) || texts.unavailable);
        if (submit) submit.disabled = false;
      })
      .then(function () {
        busy = false;
      });
  }

  // (no "instanceof Element" here: a script of Stripe's, or a stand-in of it, may have a
  // global of that name)
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.closest && target.closest("#card-open")) {
      event.preventDefault();
      openCardForm();
    }
  });

  document.addEventListener("submit", function (event) {
    if (event.target && event.target.id === "card-form") {
      event.preventDefault();
      pay();
    }
  });

  showCardOption();
})();
