// Finish a payment the bank wants confirmed (3-D Secure) through Stripe.js, then wait for the
// webhook that confirms it (polling the portal's status URL) before showing the result, so the
// next page never shows a stale state as current.
(function () {
  "use strict";
  const box = document.getElementById("authenticate");
  if (!box || typeof Stripe === "undefined") { return; }
  const status = document.getElementById("authenticate-status");
  const stripe = Stripe(box.dataset.publishableKey);
  const deadline = Date.now() + 60000;

  function waitForConfirmation() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (answer.state === "paid") {
          window.location.assign(answer.done_url || box.dataset.doneUrl);
        } else if (answer.state === "failed") {
          status.textContent = answer.message || "The payment did not go through.";
        } else if (Date.now() < deadline) {
          window.setTimeout(waitForConfirmation, 700);
        } else {
          status.textContent = "Your bank confirmed the payment; we are still waiting for Stripe's " +
            "confirmation. This page will be up to date shortly: reload it in a minute.";
        }
      })
      .catch(function () { window.setTimeout(waitForConfirmation, 1500); });
  }

  function abandon(message) {
    const form = document.getElementById("abandon-form");
    if (!form || !box.dataset.abandonUrl) {
      status.textContent = message + " You can try again from the billing page.";
      return;
    }
    fetch(box.dataset.abandonUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (answer) { window.location.assign(answer.done_url || box.dataset.doneUrl); })
      .catch(function () { status.textContent = message + " Your plan was not changed."; });
  }

  stripe.handleNextAction({ clientSecret: box.dataset.clientSecret }).then(function (result) {
    if (result.error) {
      abandon(result.error.message);
      return;
    }
    if (result.paymentIntent && result.paymentIntent.status === "succeeded") {
      status.textContent = "Payment confirmed by your bank. Finishing up…";
      waitForConfirmation();
    } else {
      abandon("The payment is not complete.");
    }
  });
})();
