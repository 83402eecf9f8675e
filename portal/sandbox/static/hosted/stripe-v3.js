/*
 * Stripe.js stand-in served by the Stripe sandbox at <sandbox root>/v3/.
 *
 * It offers the part of Stripe.js v3 a billing portal uses: Stripe(publishableKey),
 * stripe.elements({clientSecret} | {mode, amount, currency}), elements.create('payment' |
 * 'card'), mount / on / update / unmount / destroy, elements.submit(), stripe.confirmSetup,
 * confirmPayment, confirmCardSetup, confirmCardPayment, handleNextAction,
 * retrievePaymentIntent, retrieveSetupIntent and createPaymentMethod, resolving with the
 * same {error} / {setupIntent} / {paymentIntent} / {paymentMethod} objects.
 *
 * The sandbox root comes from this script's own src, so the sandbox may be mounted under any
 * prefix. Card fields live in frames served by the sandbox and every API call runs inside a
 * sandbox frame (a hidden "controller" frame when no Element is involved); this page only
 * exchanges postMessage calls with them. 3-D Secure opens the sandbox's challenge page in a
 * modal frame, as Stripe.js does.
 */
(function () {
  'use strict';

  if (window.Stripe && window.Stripe.sandbox) { return; }

  // currentScript is null when this runs from a module or a later callback; then the last
  // script whose src ends in /v3/ is this one.
  var script = document.currentScript || Array.prototype.slice.call(document.scripts)
    .filter(function (s) { return /\/v3\/?(?:[?#].*)?$/.test(s.src); }).pop();
  var SRC = (script && script.src) || '';
  var ROOT = SRC.replace(/v3\/?(?:[?#].*)?$/, '');
  var ORIGIN = new URL(ROOT, window.location.href).origin;
  var FRAME_URL = ROOT + 'v3/elements-inner.html';
  var CHALLENGE_DONE = 'stripe-sandbox:3ds-complete';
  var frames = {};
  var counter = 0;

  function IntegrationError(message) {
    var error = new Error(message);
    error.name = 'IntegrationError';
    return error;
  }

  function rejected(message) { return Promise.reject(IntegrationError(message)); }

  /* ---- frames and the messages they exchange with this page ---- */

  function Frame(kind, key, options, onEvent) {
    var self = this;
    counter += 1;
    this.name = '__privateStripeFrame' + counter;
    this.onEvent = onEvent || function () {};
    this.pending = {};
    this.seq = 0;
    this.ready = new Promise(function (resolve) { self.markReady = resolve; });
    var iframe = document.createElement('iframe');
    iframe.name = this.name;
    iframe.title = kind === 'controller' ? 'Stripe sandbox controller' : 'Secure card payment input frame';
    iframe.setAttribute('frameborder', '0');
    iframe.setAttribute('allowtransparency', 'true');
    iframe.setAttribute('scrolling', 'no');
    var hash = new URLSearchParams({ key: key, origin: window.location.origin, frame: this.name,
      kind: kind, options: JSON.stringify(options || {}) });
    iframe.src = FRAME_URL + '#' + hash.toString();
    this.iframe = iframe;
    frames[this.name] = this;
  }

  Frame.prototype.call = function (action, payload) {
    var self = this;
    return this.ready.then(function () {
      return new Promise(function (resolve) {
        self.seq += 1;
        self.pending[self.seq] = resolve;
        self.iframe.contentWindow.postMessage(
          { __stripeSandbox: 1, id: self.seq, action: action, payload: payload || {} }, ORIGIN);
      });
    });
  };

  Frame.prototype.destroy = function () {
    delete frames[this.name];
    if (this.iframe.parentNode) { this.iframe.parentNode.removeChild(this.iframe); }
  };

  window.addEventListener('message', function (ev) {
    var data = ev.data;
    if (ev.origin !== ORIGIN || !data || data.__stripeSandbox !== 1) { return; }
    var frame = frames[data.frame];
    if (!frame || ev.source !== frame.iframe.contentWindow) { return; }
    if (data.reply) {
      var resolve = frame.pending[data.reply];
      delete frame.pending[data.reply];
      if (resolve) { resolve(data.result); }
      return;
    }
    if (data.event === 'ready') { frame.markReady(); }
    frame.onEvent(data.event, data.payload || {});
  });

  function Controller(key) { this.key = key; this.frame = null; }

  Controller.prototype.request = function (method, path, params) {
    if (!this.frame) {
      this.frame = new Frame('controller', this.key);
      var iframe = this.frame.iframe;
      iframe.setAttribute('aria-hidden', 'true');
      iframe.tabIndex = -1;
      iframe.style.cssText = 'border:0;width:1px;height:1px;position:absolute;left:-9999px;top:0;';
      (document.body || document.documentElement).appendChild(iframe);
    }
    return this.frame.call('api', { method: method, path: path, params: params });
  };

  /* ---- intents ---- */

  var KINDS = {
    pi: { kind: 'payment_intent', path: 'v1/payment_intents/', key: 'paymentIntent', label: 'PaymentIntent' },
    seti: { kind: 'setup_intent', path: 'v1/setup_intents/', key: 'setupIntent', label: 'SetupIntent' },
  };

  function parseSecret(secret) {
    var match = /^((pi|seti)_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/.exec(String(secret || ''));
    return match ? { id: match[1], secret: secret, type: KINDS[match[2]] } : null;
  }

  function intentError(intent, type) {
    var last = type.kind === 'payment_intent' ? intent.last_payment_error : intent.last_setup_error;
    var error = Object.assign({}, last || { type: 'card_error', message: 'Your card was declined.' });
    error[type.kind] = intent;
    return error;
  }

  function settle(intent, type) {
    var last = type.kind === 'payment_intent' ? intent.last_payment_error : intent.last_setup_error;
    if (intent.status === 'requires_payment_method' && last) { return { error: intentError(intent, type) }; }
    var result = {};
    result[type.key] = intent;
    return result;
  }

  function openChallenge(url) {
    return new Promise(function (resolve) {
      var previous = document.activeElement;
      var overlay = document.createElement('div');
      overlay.setAttribute('role', 'dialog');
      overlay.setAttribute('aria-modal', 'true');
      overlay.setAttribute('aria-label', '3D Secure authentication');
      overlay.style.cssText = 'position:fixed;top:0;right:0;bottom:0;left:0;z-index:2147483647;' +
        'background:rgba(0,0,0,0.5);display:flex;align-items:center;justify-content:center;';
      var frame = document.createElement('iframe');
      frame.name = '__privateStripeChallengeFrame';
      frame.title = '3D Secure authentication';
      frame.src = url;
      frame.style.cssText = 'border:0;background:#fff;border-radius:8px;width:500px;max-width:100vw;' +
        'height:600px;max-height:100vh;';
      frame.addEventListener('load', function () { frame.focus(); }, { once: true });
      overlay.appendChild(frame);
      document.body.appendChild(overlay);
      function onMessage(ev) {
        if (ev.origin !== ORIGIN || ev.source !== frame.contentWindow) { return; }
        if (!ev.data || ev.data.type !== CHALLENGE_DONE) { return; }
        window.removeEventListener('message', onMessage);
        overlay.parentNode.removeChild(overlay);
        if (previous && previous.focus) { previous.focus(); }
        resolve(ev.data);
      }
      window.addEventListener('message', onMessage);
    });
  }

  function redirectAfter(returnUrl, intent, type) {
    var url = new URL(returnUrl, window.location.href);
    url.searchParams.set(type.kind, intent.id);
    url.searchParams.set(type.kind + '_client_secret', intent.client_secret);
    url.searchParams.set('redirect_status', intent.status === 'processing' ? 'processing' : 'succeeded');
    window.location.assign(url.toString());
    return new Promise(function () {});
  }

  /* ---- Stripe ---- */

  function Stripe(key, options) {
    if (!(this instanceof Stripe)) { return new Stripe(key, options); }
    if (typeof key !== 'string' || !key) {
      throw IntegrationError('Please call Stripe() with your publishable key. You used an empty string.');
    }
    if (/^(sk|rk)_/.test(key)) {
      throw IntegrationError('You should not use your secret key with Stripe.js. Please pass a publishable key instead.');
    }
    if (!/^pk_test_/.test(key)) {
      throw IntegrationError('Invalid API Key provided: ' + key + '. The Stripe sandbox takes test publishable keys (pk_test_...).');
    }
    this._key = key;
    this._options = options || {};
    this._controller = new Controller(key);
  }

  Stripe.sandbox = true;
  Stripe.version = 3;

  Stripe.prototype._request = function (method, path, params) {
    return this._controller.request(method, path, params);
  };

  Stripe.prototype._retrieve = function (parsed) {
    return this._request('GET', parsed.type.path + parsed.id, { client_secret: parsed.secret })
      .then(function (res) { return res.status === 200 ? settle(res.body, parsed.type) : { error: res.body.error }; });
  };

  Stripe.prototype._handleAction = function (parsed, intent) {
    var action = intent.next_action || {};
    if (action.type === 'redirect_to_url') {
      window.location.assign(action.redirect_to_url.url);
      return new Promise(function () {});
    }
    if (action.type !== 'use_stripe_sdk') {
      return Promise.resolve({ error: { type: 'invalid_request_error',
        message: 'The sandbox cannot handle next_action of type ' + action.type + '.' } });
    }
    var self = this;
    return openChallenge(action.use_stripe_sdk.stripe_js).then(function () { return self._retrieve(parsed); });
  };

  Stripe.prototype._confirm = function (parsed, paymentMethod, extra, handleActions) {
    var self = this;
    var params = Object.assign({ client_secret: parsed.secret }, extra || {});
    if (paymentMethod) { params.payment_method = paymentMethod; }
    return this._request('POST', parsed.type.path + parsed.id + '/confirm', params).then(function (res) {
      if (res.status !== 200) {
        return { error: (res.body && res.body.error) || { type: 'api_error', message: 'Something went wrong.' } };
      }
      if (res.body.status === 'requires_action' && handleActions) { return self._handleAction(parsed, res.body); }
      return settle(res.body, parsed.type);
    });
  };

  Stripe.prototype.elements = function (options) { return new Elements(this, options || {}); };

  function collectFromElements(elements, billingDetails) {
    var element = elements._elements.payment || elements._elements.card;
    if (!element) { return rejected('Create and mount a Payment Element before confirming.'); }
    return element._call('createPaymentMethod', { billing_details: billingDetails });
  }

  Stripe.prototype._confirmWithElements = function (prefix, name, options) {
    options = options || {};
    var elements = options.elements;
    var confirmParams = options.confirmParams || {};
    var secret = options.clientSecret || (elements && elements._options.clientSecret);
    var parsed = parseSecret(secret);
    var redirect = options.redirect || 'always';
    if (!elements && !confirmParams.payment_method) {
      return rejected('stripe.' + name + '(): expected the `elements` option.');
    }
    if (!parsed || parsed.type !== KINDS[prefix]) {
      return rejected('stripe.' + name + '(): expected a ' + KINDS[prefix].label + ' `clientSecret`.');
    }
    if (redirect !== 'always' && redirect !== 'if_required') {
      return rejected('stripe.' + name + '(): `redirect` must be "always" or "if_required".');
    }
    if (redirect === 'always' && !confirmParams.return_url) {
      return rejected('stripe.' + name + "(): the `confirmParams.return_url` argument is required unless passing `redirect: 'if_required'`.");
    }
    if (elements && elements._options.mode && !elements._submitted) {
      return rejected('elements.submit() must be called before stripe.' + name + '(). Call elements.submit() as soon as your customer presses pay, prior to any asynchronous work.');
    }
    var self = this;
    var collect = elements
      ? collectFromElements(elements, (confirmParams.payment_method_data || {}).billing_details)
      : Promise.resolve({ paymentMethod: { id: confirmParams.payment_method } });
    var extra = {};
    ['setup_future_usage', 'receipt_email', 'shipping'].forEach(function (k) {
      if (prefix === 'pi' && confirmParams[k]) { extra[k] = confirmParams[k]; }
    });
    return collect.then(function (collected) {
      if (collected.error) { return { error: collected.error }; }
      return self._confirm(parsed, collected.paymentMethod.id, extra, true).then(function (result) {
        var intent = result[parsed.type.key];
        if (intent && redirect === 'always') { return redirectAfter(confirmParams.return_url, intent, parsed.type); }
        return result;
      });
    });
  };

  Stripe.prototype.confirmPayment = function (options) { return this._confirmWithElements('pi', 'confirmPayment', options); };
  Stripe.prototype.confirmSetup = function (options) { return this._confirmWithElements('seti', 'confirmSetup', options); };

  Stripe.prototype._confirmCard = function (prefix, name, secret, data, options) {
    var parsed = parseSecret(secret);
    if (!parsed || parsed.type !== KINDS[prefix]) {
      return rejected('stripe.' + name + '(): expected a ' + KINDS[prefix].label + ' client secret as the first argument.');
    }
    data = data || {};
    options = options || {};
    var handleActions = options.handleActions !== false;
    var pm = data.payment_method;
    var collect;
    if (pm && typeof pm === 'object') {
      if (!(pm.card instanceof Element)) { return rejected('stripe.' + name + '(): payment_method.card must be a card Element.'); }
      collect = pm.card._call('createPaymentMethod', { billing_details: pm.billing_details });
    } else {
      collect = Promise.resolve({ paymentMethod: pm ? { id: pm } : null });
    }
    var extra = {};
    if (prefix === 'pi' && data.setup_future_usage) { extra.setup_future_usage = data.setup_future_usage; }
    // A return_url only matters to integrations that handle next actions themselves.
    if (!handleActions && data.return_url) { extra.return_url = data.return_url; }
    var self = this;
    return collect.then(function (collected) {
      if (collected.error) { return { error: collected.error }; }
      return self._confirm(parsed, collected.paymentMethod && collected.paymentMethod.id, extra, handleActions);
    });
  };

  Stripe.prototype.confirmCardPayment = function (secret, data, options) {
    return this._confirmCard('pi', 'confirmCardPayment', secret, data, options);
  };
  Stripe.prototype.confirmCardSetup = function (secret, data, options) {
    return this._confirmCard('seti', 'confirmCardSetup', secret, data, options);
  };

  Stripe.prototype.handleNextAction = function (options) {
    var parsed = parseSecret((options || {}).clientSecret);
    if (!parsed) { return rejected('stripe.handleNextAction(): expected a `clientSecret`.'); }
    var self = this;
    return this._request('GET', parsed.type.path + parsed.id, { client_secret: parsed.secret }).then(function (res) {
      if (res.status !== 200) { return { error: res.body.error }; }
      if (res.body.status !== 'requires_action') {
        throw IntegrationError('stripe.handleNextAction(): the ' + parsed.type.label + ' has a status of ' +
          res.body.status + '; only one in requires_action has a next action to handle.');
      }
      return self._handleAction(parsed, res.body);
    });
  };
  Stripe.prototype.handleCardAction = function (secret) { return this.handleNextAction({ clientSecret: secret }); };

  Stripe.prototype.retrievePaymentIntent = function (secret) {
    var parsed = parseSecret(secret);
    if (!parsed || parsed.type !== KINDS.pi) { return rejected('stripe.retrievePaymentIntent(): expected a PaymentIntent client secret.'); }
    return this._request('GET', parsed.type.path + parsed.id, { client_secret: secret }).then(function (res) {
      return res.status === 200 ? { paymentIntent: res.body } : { error: res.body.error };
    });
  };
  Stripe.prototype.retrieveSetupIntent = function (secret) {
    var parsed = parseSecret(secret);
    if (!parsed || parsed.type !== KINDS.seti) { return rejected('stripe.retrieveSetupIntent(): expected a SetupIntent client secret.'); }
    return this._request('GET', parsed.type.path + parsed.id, { client_secret: secret }).then(function (res) {
      return res.status === 200 ? { setupIntent: res.body } : { error: res.body.error };
    });
  };

  Stripe.prototype.createPaymentMethod = function (options) {
    options = options || {};
    if (options.elements) {
      return collectFromElements(options.elements, ((options.params || {}).billing_details));
    }
    if (options.card instanceof Element) {
      return options.card._call('createPaymentMethod', { billing_details: options.billing_details });
    }
    return rejected('stripe.createPaymentMethod(): pass `elements` or `{type: "card", card: cardElement}`.');
  };

  /* ---- Elements ---- */

  function Elements(stripe, options) {
    this._stripe = stripe;
    this._options = Object.assign({}, options);
    this._elements = {};
    this._submitted = false;
    if (options.clientSecret !== undefined && !parseSecret(options.clientSecret)) {
      throw IntegrationError('Invalid value for elements(): clientSecret should be a client secret of the form ${id}_secret_${secret}.');
    }
    if (options.mode !== undefined) {
      if (['payment', 'setup', 'subscription'].indexOf(options.mode) < 0) {
        throw IntegrationError('Invalid value for elements(): mode should be one of payment, setup, subscription.');
      }
      if (options.mode !== 'setup' && (typeof options.amount !== 'number' || !options.currency)) {
        throw IntegrationError('elements(): `amount` and `currency` are required in ' + options.mode + ' mode.');
      }
    }
  }

  Elements.prototype.create = function (type, options) {
    if (type !== 'payment' && type !== 'card') {
      throw IntegrationError('The Stripe sandbox offers the "payment" and "card" Elements, not "' + type + '".');
    }
    if (this._elements[type]) { throw IntegrationError('Can only create one Element of type ' + type + '.'); }
    var element = new Element(this, type, options || {});
    this._elements[type] = element;
    return element;
  };
  Elements.prototype.getElement = function (type) { return this._elements[type] || null; };
  Elements.prototype.update = function (options) { Object.assign(this._options, options || {}); };
  Elements.prototype.fetchUpdates = function () { return Promise.resolve({}); };
  Elements.prototype.submit = function () {
    var self = this;
    var element = this._elements.payment || this._elements.card;
    if (!element) { return rejected('elements.submit(): create and mount a Payment Element first.'); }
    return element._call('validate').then(function (result) {
      if (result.error) { return { error: result.error }; }
      self._submitted = true;
      return {};
    });
  };

  function Element(elements, type, options) {
    this._group = elements;
    this._type = type;
    this._options = options;
    this._handlers = {};
    this._frame = null;
    this._container = null;
  }

  Element.prototype.mount = function (target) {
    var node = typeof target === 'string' ? document.querySelector(target) : target;
    if (!node || node.nodeType !== 1) {
      throw IntegrationError('Invalid DOM element. Make sure to call mount() with a valid DOM element or selector.');
    }
    if (this._frame) { this.unmount(); }
    var self = this;
    this._frame = new Frame(this._type, this._group._stripe._key, this._options, function (name, payload) {
      self._onFrameEvent(name, payload);
    });
    var wrapper = document.createElement('div');
    wrapper.className = '__PrivateStripeElement';
    wrapper.style.cssText = 'margin:0;padding:0;border:none;display:block;background:transparent;position:relative;';
    this._frame.iframe.style.cssText = 'border:none;margin:0;padding:0;width:1px;min-width:100%;overflow:hidden;' +
      'display:block;height:' + (this._type === 'payment' ? '200px' : '90px') + ';';
    wrapper.appendChild(this._frame.iframe);
    node.appendChild(wrapper);
    node.classList.add('StripeElement', 'StripeElement--empty');
    this._container = node;
  };

  Element.prototype._onFrameEvent = function (name, payload) {
    if (name === 'resize') {
      this._frame.iframe.style.height = payload.height + 'px';
      return;
    }
    var classes = this._container ? this._container.classList : null;
    if (classes && name === 'change') {
      classes.toggle('StripeElement--empty', !!payload.empty);
      classes.toggle('StripeElement--complete', !!payload.complete);
      classes.toggle('StripeElement--invalid', !!payload.error);
    }
    if (classes && name === 'focus') { classes.add('StripeElement--focus'); }
    if (classes && name === 'blur') { classes.remove('StripeElement--focus'); }
    var event = Object.assign({ elementType: this._type }, name === 'ready' ? {} : payload);
    (this._handlers[name] || []).slice().forEach(function (handler) { handler(event); });
  };

  Element.prototype._call = function (action, payload) {
    if (!this._frame) {
      return Promise.resolve({ error: { type: 'validation_error', message: 'This Element is not mounted.' } });
    }
    return this._frame.call(action, payload);
  };

  Element.prototype.on = function (name, handler) {
    (this._handlers[name] = this._handlers[name] || []).push(handler);
    return this;
  };
  Element.prototype.off = function (name, handler) {
    var list = this._handlers[name] || [];
    this._handlers[name] = handler ? list.filter(function (h) { return h !== handler; }) : [];
    return this;
  };
  Element.prototype.once = function (name, handler) {
    var self = this;
    function wrapped(event) { self.off(name, wrapped); handler(event); }
    return this.on(name, wrapped);
  };
  Element.prototype.update = function (options) {
    Object.assign(this._options, options || {});
    if (this._frame) { this._frame.call('update', { options: this._options }); }
  };
  Element.prototype.clear = function () { if (this._frame) { this._frame.call('clear'); } };
  Element.prototype.focus = function () { if (this._frame) { this._frame.call('focus'); } };
  Element.prototype.blur = function () { if (this._frame) { this._frame.call('blur'); } };
  Element.prototype.unmount = function () {
    if (this._frame) {
      var wrapper = this._frame.iframe.parentNode;
      this._frame.destroy();
      if (wrapper && wrapper.parentNode) { wrapper.parentNode.removeChild(wrapper); }
      this._frame = null;
    }
    if (this._container) {
      this._container.classList.remove('StripeElement', 'StripeElement--empty', 'StripeElement--complete',
        'StripeElement--invalid', 'StripeElement--focus');
      this._container = null;
    }
  };
  Element.prototype.destroy = function () {
    this.unmount();
    delete this._group._elements[this._type];
  };

  window.Stripe = Stripe;
})();
