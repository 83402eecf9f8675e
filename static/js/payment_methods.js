// Add a card with Stripe Elements (deferred SetupIntent): the card goes straight to Stripe,
// the portal only creates the SetupIntent and records the saved card.
(function () {
  "use strict";
  const form = document.getElementById("card-form");
  if (!form || typeof Stripe === "undefined") { return; }
  const csrf = JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
  const errors = document.getElementById("card-errors");
  const submit = document.getElementById("card-submit");
  const stripe = Stripe(form.dataset.publishableKey);
  const elements = stripe.elements({ mode: "setup", currency: form.dataset.currency });
  const payment = elements.create("payment");
  payment.mount("#payment-element");
  payment.on("ready", function () { submit.disabled = false; });

  // The Payment Element writes its own validation errors beside the fields; repeating them
  // here showed every card error twice. Only what it cannot show (declines, network) goes here.
  function show(error) {
    errors.textContent = error && error.type !== "validation_error" ? error.message : "";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) { throw new Error(data.error || "Something went wrong. Please try again."); }
    return data;
  }

  async function record(setupIntentId, makeDefault) {
    await post(form.dataset.confirmUrl, { setup_intent: setupIntentId, make_default: makeDefault });
    window.location.assign(form.dataset.returnUrl.split("?")[0]);
  }

  // Back from a redirect (3-D Secure): record the card the SetupIntent saved.
  const params = new URLSearchParams(window.location.search);
  if (params.get("setup_intent") && params.get("redirect_status") === "succeeded") {
    record(params.get("setup_intent"), params.get("make_default") === "1")
      .catch(show);
  } else if (params.get("redirect_status") === "failed") {
    errors.textContent = "The card could not be verified. Please try again or use another card.";
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    submit.disabled = true;
    errors.textContent = "";
    const makeDefault = document.getElementById("make-default").checked;
    try {
      const submitted = await elements.submit();
      if (submitted.error) { throw submitted.error; }
      // The page's attempt token: pressing again replays the same SetupIntent at Stripe.
      const intent = await post(form.dataset.setupUrl, { attempt: form.dataset.setupAttempt });
      const returnUrl = form.dataset.returnUrl + "?make_default=" + (makeDefault ? "1" : "0");
      const result = await stripe.confirmSetup({
        elements: elements,
        clientSecret: intent.client_secret,
        confirmParams: { return_url: returnUrl },
        redirect: "if_required",
      });
      if (result.error) { throw result.error; }
      await record(result.setupIntent.id, makeDefault);
    } catch (error) {
      show(error);
      submit.disabled = false;
    }
  });
})();
