/*
 * Small helpers for the hosted checkout form: readable card number and expiry while typing,
 * and one submission at a time. The form works without this script.
 */
(function () {
  'use strict';
  var form = document.getElementById('payment-form');
  if (!form) { return; }
  var number = document.getElementById('number');
  var expiry = document.getElementById('expiry');
  var submit = document.getElementById('submit');

  number.addEventListener('input', function () {
    var d = number.value.replace(/\D/g, '').slice(0, 19);
    number.value = /^3[47]/.test(d)
      ? [d.slice(0, 4), d.slice(4, 10), d.slice(10, 15)].filter(Boolean).join(' ')
      : d.replace(/(\d{4})(?=\d)/g, '$1 ');
  });
  expiry.addEventListener('input', function () {
    var d = expiry.value.replace(/\D/g, '');
    if (d.length === 1 && d > '1') { d = '0' + d; }
    d = d.slice(0, 4);
    expiry.value = d.length > 2 ? d.slice(0, 2) + ' / ' + d.slice(2) : d;
  });
  form.addEventListener('submit', function (ev) {
    if (submit.disabled) { ev.preventDefault(); return; }
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    submit.dataset.label = submit.textContent;
    submit.textContent = 'Processing…';
  });
  // After a refused attempt, put the person where the problem is; the alert is read out.
  var error = document.getElementById('form-error');
  if (error && error.textContent.trim()) {
    var invalid = form.querySelector('[aria-invalid="true"]') || number;
    invalid.focus();
  }
  // Coming back through the browser's history must not leave the button stuck.
  window.addEventListener('pageshow', function () {
    if (submit.dataset.label) { submit.textContent = submit.dataset.label; }
    submit.disabled = false;
    submit.removeAttribute('aria-busy');
  });
})();
