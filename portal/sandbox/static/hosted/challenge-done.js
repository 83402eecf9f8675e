/*
 * Tells the Stripe.js stand-in that opened this 3-D Secure page in a modal frame that the
 * challenge has ended. The message names the intent and the outcome, nothing secret, so it
 * may go to whichever page embeds the frame; Stripe.js then reads the intent again itself.
 */
(function () {
  'use strict';
  var done = document.getElementById('challenge-done');
  if (!done) { return; }
  var message = { type: 'stripe-sandbox:3ds-complete', intent: done.dataset.intent,
    outcome: done.dataset.outcome };
  if (window.parent && window.parent !== window) { window.parent.postMessage(message, '*'); }
  if (window.opener) { window.opener.postMessage(message, '*'); }
})();
