// Finish an invoice payment the bank wants confirmed (3-D Secure) through Stripe.js.
(function () {
  "use strict";
  const box = document.getElementById("authenticate");
  if (!box || typeof Stripe === "undefined") { return; }
  const status = document.getElementById("authenticate-status");
  const stripe = Stripe(box.dataset.publishableKey);
  stripe.handleNextAction({ clientSecret: box.dataset.clientSecret }).then(function (result) {
    if (result.error) {
      status.textContent = result.error.message + " You can try again from the billing page.";
      return;
    }
    if (result.paymentIntent && result.paymentIntent.status === "succeeded") {
      status.textContent = "Payment confirmed. Thank you!";
      window.location.assign(box.dataset.doneUrl);
    } else {
      status.textContent = "The payment is not complete yet. Please try again.";
    }
  });
})();
