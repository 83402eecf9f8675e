/*
 * Inside an Element's frame (or the hidden controller frame) of the sandbox's Stripe.js
 * stand-in. The frame is served by the sandbox, so card details typed here go straight to
 * the sandbox API with the publishable key; the embedding page only ever receives the
 * PaymentMethod id and what the API answers. Messages are accepted from the parent window
 * only, and only from the origin the parent announced when it created the frame.
 */
(function () {
  'use strict';

  var hash = new URLSearchParams(window.location.hash.slice(1));
  var KEY = hash.get('key') || '';
  var PARENT_ORIGIN = hash.get('origin') || '';
  var FRAME = hash.get('frame') || '';
  var KIND = hash.get('kind') || 'controller';
  var options = {};
  try { options = JSON.parse(hash.get('options') || '{}') || {}; } catch (e) { options = {}; }
  // This page lives at <sandbox root>/v3/elements-inner.html; the API is at <sandbox root>/v1/.
  var API_ROOT = new URL('../', window.location.href).href;

  function send(message) {
    message.__stripeSandbox = 1;
    message.frame = FRAME;
    window.parent.postMessage(message, PARENT_ORIGIN);
  }

  function encode(value) {
    var out = [];
    (function walk(node, prefix) {
      if (node === undefined || node === null) { return; }
      if (Array.isArray(node)) {
        node.forEach(function (item, i) { walk(item, prefix + '[' + i + ']'); });
      } else if (typeof node === 'object') {
        Object.keys(node).forEach(function (k) { walk(node[k], prefix ? prefix + '[' + k + ']' : k); });
      } else {
        out.push(encodeURIComponent(prefix) + '=' + encodeURIComponent(String(node)));
      }
    })(value, '');
    return out.join('&');
  }

  function api(method, path, params) {
    var url = API_ROOT + String(path).replace(/^\//, '');
    var body = encode(params || {});
    var init = { method: method, headers: { Authorization: 'Bearer ' + KEY }, credentials: 'omit' };
    if (method === 'GET') {
      if (body) { url += '?' + body; }
    } else {
      init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
      init.body = body;
    }
    return fetch(url, init).then(function (response) {
      return response.json().then(function (json) { return { status: response.status, body: json }; });
    }).catch(function () {
      return { status: 0, body: { error: { type: 'api_connection_error',
        message: 'We could not reach the payment service. Check your connection and try again.' } } };
    });
  }

  /* ---- card fields ---- */

  var form = document.getElementById('fields');
  var number = document.getElementById('cardnumber');
  var expiry = document.getElementById('exp-date');
  var cvc = document.getElementById('cvc');
  var errorBox = document.getElementById('card-error');
  var touched = { number: false, expiry: false, cvc: false };

  function digits(text) { return String(text || '').replace(/\D/g, ''); }

  function brandOf(d) {
    if (/^4/.test(d)) { return 'visa'; }
    if (/^3[47]/.test(d)) { return 'amex'; }
    if (/^(5[1-5]|2(2[2-9]|[3-6]\d|7[01]|720))/.test(d)) { return 'mastercard'; }
    if (/^(6011|65|64[4-9])/.test(d)) { return 'discover'; }
    if (/^35/.test(d)) { return 'jcb'; }
    if (/^3(0|6|8)/.test(d)) { return 'diners'; }
    if (/^62/.test(d)) { return 'unionpay'; }
    return 'unknown';
  }

  function lengthFor(brand) { return brand === 'amex' ? 15 : brand === 'diners' ? 14 : 16; }

  function luhn(d) {
    var sum = 0;
    for (var i = 0; i < d.length; i++) {
      var n = +d[d.length - 1 - i];
      if (i % 2) { n *= 2; if (n > 9) { n -= 9; } }
      sum += n;
    }
    return sum % 10 === 0;
  }

  function formatNumber(d) {
    var brand = brandOf(d);
    d = d.slice(0, brand === 'unionpay' ? 19 : lengthFor(brand));
    if (brand === 'amex') {
      return [d.slice(0, 4), d.slice(4, 10), d.slice(10)].filter(Boolean).join(' ');
    }
    return d.replace(/(\d{4})(?=\d)/g, '$1 ');
  }

  function formatExpiry(text) {
    var d = digits(text);
    if (d.length === 1 && d > '1') { d = '0' + d; }
    d = d.slice(0, 4);
    return d.length > 2 ? d.slice(0, 2) + ' / ' + d.slice(2) : d;
  }

  function problem(code, message) { return { type: 'validation_error', code: code, message: message }; }

  function checkNumber() {
    var d = digits(number.value);
    if (!d) { return { empty: true, complete: false, error: problem('incomplete_number', 'Your card number is incomplete.') }; }
    var brand = brandOf(d);
    if (d.length < lengthFor(brand)) {
      return { empty: false, complete: false, error: problem('incomplete_number', 'Your card number is incomplete.') };
    }
    if (!luhn(d)) { return { empty: false, complete: false, error: problem('invalid_number', 'Your card number is invalid.') }; }
    return { empty: false, complete: true, error: null };
  }

  function checkExpiry() {
    var d = digits(expiry.value);
    if (d.length < 4) {
      return { empty: !d, complete: false, error: problem('incomplete_expiry', "Your card's expiration date is incomplete.") };
    }
    var month = +d.slice(0, 2);
    var year = 2000 + +d.slice(2, 4);
    var now = new Date();
    if (month < 1 || month > 12) {
      return { empty: false, complete: false, error: problem('invalid_expiry_month', "Your card's expiration date is invalid.") };
    }
    if (year < now.getFullYear()) {
      return { empty: false, complete: false, error: problem('invalid_expiry_year_past', "Your card's expiration year is in the past.") };
    }
    if (year === now.getFullYear() && month < now.getMonth() + 1) {
      return { empty: false, complete: false, error: problem('invalid_expiry_month_past', "Your card's expiration date is in the past.") };
    }
    return { empty: false, complete: true, error: null };
  }

  function checkCvc() {
    var d = digits(cvc.value);
    var wanted = brandOf(digits(number.value)) === 'amex' ? 4 : 3;
    if (d.length < wanted) {
      return { empty: !d, complete: false, error: problem('incomplete_cvc', "Your card's security code is incomplete.") };
    }
    return { empty: false, complete: true, error: null };
  }

  function state(showAll) {
    var checks = { number: checkNumber(), expiry: checkExpiry(), cvc: checkCvc() };
    var inputs = { number: number, expiry: expiry, cvc: cvc };
    var shown = null;
    Object.keys(checks).forEach(function (name) {
      var check = checks[name];
      // Like Stripe.js: an incomplete field is only reported once the person has left it.
      var visible = check.error && (showAll || touched[name] ||
        (check.error.code.indexOf('incomplete') !== 0 && !check.empty));
      inputs[name].setAttribute('aria-invalid', visible ? 'true' : 'false');
      if (visible && !shown) { shown = check.error; }
    });
    errorBox.textContent = shown ? shown.message : '';
    resize();
    var empty = checks.number.empty && checks.expiry.empty && checks.cvc.empty;
    var complete = checks.number.complete && checks.expiry.complete && checks.cvc.complete;
    var first = checks.number.error || checks.expiry.error || checks.cvc.error;
    return { empty: empty, complete: complete, error: shown, firstError: first,
      brand: brandOf(digits(number.value)) };
  }

  function changed() {
    var s = state(false);
    var payload = { empty: s.empty, complete: s.complete, brand: s.brand };
    if (s.error) { payload.error = s.error; } else { payload.error = undefined; }
    payload.value = KIND === 'payment' ? { type: 'card' } : { postalCode: '' };
    if (KIND === 'payment') { payload.collapsed = false; }
    send({ event: 'change', payload: payload });
  }

  function resize() {
    send({ event: 'resize', payload: { height: Math.ceil(document.documentElement.scrollHeight) } });
  }

  function setUp() {
    if (KIND === 'controller') { return; }
    document.body.className = 'kind-' + KIND;
    form.hidden = false;
    if (options.disabled) { [number, expiry, cvc].forEach(function (i) { i.disabled = true; }); }
    number.addEventListener('input', function () {
      var at = number.selectionStart === number.value.length;
      number.value = formatNumber(digits(number.value));
      if (at) { number.setSelectionRange(number.value.length, number.value.length); }
      changed();
    });
    expiry.addEventListener('input', function () { expiry.value = formatExpiry(expiry.value); changed(); });
    cvc.addEventListener('input', function () { cvc.value = digits(cvc.value).slice(0, 4); changed(); });
    [['number', number], ['expiry', expiry], ['cvc', cvc]].forEach(function (pair) {
      pair[1].addEventListener('focus', function () { send({ event: 'focus', payload: {} }); });
      pair[1].addEventListener('blur', function () {
        if (pair[1].value) { touched[pair[0]] = true; }
        changed();
        send({ event: 'blur', payload: {} });
      });
    });
    form.addEventListener('submit', function (ev) { ev.preventDefault(); });
  }

  function createPaymentMethod(payload) {
    touched = { number: true, expiry: true, cvc: true };
    var s = state(true);
    if (!s.complete) {
      changed();
      return Promise.resolve({ error: s.firstError });
    }
    var d = digits(expiry.value);
    var params = {
      type: 'card',
      card: { number: digits(number.value), exp_month: +d.slice(0, 2), exp_year: 2000 + +d.slice(2, 4),
        cvc: digits(cvc.value) },
    };
    if (payload.billing_details) { params.billing_details = payload.billing_details; }
    return api('POST', 'v1/payment_methods', params).then(function (res) {
      if (res.status === 200) { return { paymentMethod: res.body }; }
      return { error: res.body.error };
    });
  }

  var actions = {
    api: function (p) { return api(p.method, p.path, p.params); },
    createPaymentMethod: createPaymentMethod,
    validate: function () {
      touched = { number: true, expiry: true, cvc: true };
      var s = state(true);
      changed();
      return Promise.resolve(s.complete ? {} : { error: s.firstError });
    },
    clear: function () {
      number.value = expiry.value = cvc.value = '';
      touched = { number: false, expiry: false, cvc: false };
      changed();
      return Promise.resolve({});
    },
    focus: function () { number.focus(); return Promise.resolve({}); },
    blur: function () { if (document.activeElement) { document.activeElement.blur(); } return Promise.resolve({}); },
    update: function (p) {
      options = p.options || options;
      [number, expiry, cvc].forEach(function (i) { i.disabled = !!options.disabled; });
      return Promise.resolve({});
    },
  };

  window.addEventListener('message', function (ev) {
    if (ev.source !== window.parent || ev.origin !== PARENT_ORIGIN) { return; }
    var data = ev.data;
    if (!data || data.__stripeSandbox !== 1 || !data.id || !actions.hasOwnProperty(data.action)) { return; }
    actions[data.action](data.payload || {}).then(function (result) {
      send({ reply: data.id, result: result });
    });
  });

  setUp();
  send({ event: 'ready', payload: {} });
  if (KIND !== 'controller') { resize(); }
})();
