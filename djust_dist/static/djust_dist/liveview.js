/*
 * djust_dist LiveView client: plain browser JavaScript, no build step, no dependencies.
 *
 * Every element with a data-djust-root attribute gets its own WebSocket. The element
 * carries its mount token (data-djust-token), the socket path (data-djust-ws) and,
 * optionally, the server's reconnect cooldown in seconds (data-djust-reconnect-cooldown).
 *
 * Bindings, all by event delegation on the root so they survive re-renders:
 *   dj-click="name"    click events, params from dj-value-<key> attributes
 *   dj-input="name"    input events, params {[input.name || "value"]: input.value};
 *                      dj-debounce="<ms>" on the input delays and coalesces them
 *   dj-submit="name"   form submission, params are the form fields
 *
 * Read-only state for tests and debugging is on window.djustDist.
 */
(function () {
  "use strict";

  var CLOSE_ABUSE = 4429;
  var CLOSE_INVALID_TOKEN = 4403;

  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var JITTER = 0.2;
  // A socket must stay open this long, and render, before it counts as healthy.
  // Without this, a server that accepts and then closes at once would be hammered
  // at the base delay forever.
  var STABLE_AFTER_MS = 5000;
  var DEFAULT_COOLDOWN_S = 5;
  // Proxies such as nginx close WebSockets idle for 60 s by default.
  var HEARTBEAT_MS = 30000;
  // A notice shown for less than this flickers too briefly to read.
  var NOTICE_MIN_MS = 1000;
  var ERROR_NOTICE_MS = 5000;

  // Key of a hold that covers every event: a denial by the connection bucket.
  var ANY_EVENT = "*";

  // After a denial, "latest" events of that name are paced: one per interval.
  // The server counts every denial as a warning and closes the socket at its
  // max_warnings-th, so a user typing steadily must not be denied again and
  // again. The interval starts at twice the first retry_after (which is at most
  // one refill interval) and doubles on each further denial.
  var PACE_MIN_MS = 100;
  var PACE_MAX_MS = 5000;
  // Pacing ends after this long without a paced send; the server's default
  // warning_window is 60 s.
  var PACE_WINDOW_MS = 60000;
  // An in-flight "latest" event whose reply has not come after this long stops
  // holding back newer input, so a lost reply cannot freeze a field.
  var IN_FLIGHT_MAX_MS = 5000;

  var nextRef = 1;
  var connections = [];

  /* Return an object without a prototype, so that keys taken from event names or
   * frames (such as "constructor") never hit inherited properties. */
  function emptyMap() {
    return Object.create(null);
  }

  function socketUrl(path) {
    if (/^wss?:\/\//.test(path)) {
      return path;
    }
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + path;
  }

  /* Multiply a delay by a random factor in [1 - JITTER, 1 + JITTER] so that many
   * tabs dropped by one server restart do not reconnect in lockstep. */
  function withJitter(ms) {
    return ms * (1 - JITTER + Math.random() * 2 * JITTER);
  }

  function backoffDelay(attempt) {
    return withJitter(Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, attempt)));
  }

  function formatSeconds(seconds) {
    return (Math.round(seconds * 10) / 10).toFixed(1) + " s";
  }

  /* Build the params of a dj-click from its dj-value-<key> attributes. Dashes in the
   * key become underscores, so dj-value-product-id binds to product_id. */
  function valueParams(element) {
    var params = {};
    for (var i = 0; i < element.attributes.length; i++) {
      var attribute = element.attributes[i];
      if (attribute.name.indexOf("dj-value-") === 0) {
        params[attribute.name.slice("dj-value-".length).replace(/-/g, "_")] = attribute.value;
      }
    }
    return params;
  }

  /* Collect form fields into an object. A name that occurs several times (checkbox
   * groups, multi-selects) becomes an array. File inputs are skipped because a JSON
   * frame cannot carry them. */
  function formParams(form) {
    var params = {};
    new FormData(form).forEach(function (value, key) {
      if (typeof value !== "string") {
        return;
      }
      if (!Object.prototype.hasOwnProperty.call(params, key)) {
        params[key] = value;
      } else if (Array.isArray(params[key])) {
        params[key].push(value);
      } else {
        params[key] = [params[key], value];
      }
    });
    return params;
  }

  /* Remember the focused field inside root so a re-render does not steal the
   * user's focus, caret or the characters typed since the event was sent. */
  function captureFocus(root) {
    var active = document.activeElement;
    if (!active || active === root || !root.contains(active)) {
      return null;
    }
    var saved = { id: active.id, name: active.getAttribute("name"), value: null };
    if ("value" in active && active.tagName !== "BUTTON") {
      saved.value = active.value;
    }
    try {
      saved.start = active.selectionStart;
      saved.end = active.selectionEnd;
      saved.direction = active.selectionDirection;
    } catch (err) {
      // Inputs such as type=number or checkboxes throw on selection access.
      saved.start = null;
    }
    return saved;
  }

  function findField(root, saved) {
    if (saved.id) {
      return document.getElementById(saved.id);
    }
    if (saved.name) {
      return root.querySelector('[name="' + CSS.escape(saved.name) + '"]');
    }
    return null;
  }

  function restoreFocus(root, saved) {
    if (!saved) {
      return;
    }
    var field = findField(root, saved);
    if (!field || !root.contains(field)) {
      return;
    }
    if (saved.value !== null && field.value !== saved.value) {
      field.value = saved.value;
    }
    field.focus();
    if (saved.start !== null && saved.start !== undefined) {
      try {
        field.setSelectionRange(saved.start, saved.end, saved.direction || "none");
      } catch (err) {
        // The new element may not support selection, so only the focus is restored.
      }
    }
  }

  function Connection(root) {
    this.root = root;
    this.token = root.getAttribute("data-djust-token") || "";
    this.url = socketUrl(root.getAttribute("data-djust-ws") || "/ws/liveview/");
    var cooldown = parseFloat(root.getAttribute("data-djust-reconnect-cooldown"));
    this.cooldownHint = cooldown > 0 ? cooldown : DEFAULT_COOLDOWN_S;

    this.socket = null;
    this.state = "idle";
    this.connectAttempts = 0;
    this.backoffAttempt = 0;
    this.closes = [];
    this.lastClose = null;
    this.lastRejection = null;
    this.nextDelayMs = null;
    // ref -> {name, params, latest} of events that the server has not replied to yet.
    this.pendingRefs = emptyMap();
    // Event name (or ANY_EVENT) -> timer of a rate-limit hold. See holdEvents().
    this.holdTimers = emptyMap();
    // Event name -> params of a "latest" event that is waiting to be sent.
    this.deferred = emptyMap();
    // Event name -> ref of the sent event whose params are in this.deferred. Input
    // deferred before it was ever sent has no entry, because it is the newest.
    this.deferredRefs = emptyMap();
    // Event name -> ref of the "latest" event awaiting its reply. One at a time, so
    // a burst of keystrokes is not all in flight when the first denial arrives.
    this.inFlight = emptyMap();
    // Event name -> {intervalMs, untilMs} of the pacing that follows a denial.
    this.pace = emptyMap();
    this.stopped = false;

    this.openedAt = null;
    this.rendered = false;
    this.reconnectTimer = null;
    this.heartbeatTimer = null;
    this.noticeTimer = null;
    this.debounceTimers = new WeakMap();
    this.notice = this.createNotice();
    this.bindEvents();
  }

  /* The notice sits right after the root, not inside it, so a render that replaces
   * the root's HTML does not wipe a notice that is still counting down. */
  Connection.prototype.createNotice = function () {
    var notice = document.createElement("div");
    notice.className = "djust-notice";
    notice.setAttribute("role", "status");
    notice.setAttribute("aria-live", "polite");
    notice.hidden = true;
    this.root.insertAdjacentElement("afterend", notice);
    return notice;
  };

  /* Show text in the notice and hide it after durationMs (never when null). */
  Connection.prototype.showNotice = function (text, durationMs) {
    var notice = this.notice;
    clearTimeout(this.noticeTimer);
    notice.textContent = text;
    notice.hidden = false;
    if (durationMs !== null) {
      this.noticeTimer = setTimeout(function () {
        notice.hidden = true;
      }, Math.max(durationMs, NOTICE_MIN_MS));
    }
  };

  Connection.prototype.connect = function () {
    if (this.stopped) {
      return;
    }
    this.reconnectTimer = null;
    this.connectAttempts += 1;
    this.state = "connecting";
    this.openedAt = null;
    this.rendered = false;
    this.lastRejection = null;

    var socket = new WebSocket(this.url);
    this.socket = socket;
    var self = this;
    socket.addEventListener("open", function () {
      self.onOpen(socket);
    });
    socket.addEventListener("message", function (event) {
      self.onMessage(socket, event);
    });
    socket.addEventListener("close", function (event) {
      self.onClose(socket, event);
    });
  };

  Connection.prototype.onOpen = function (socket) {
    if (socket !== this.socket) {
      return;
    }
    this.state = "open";
    this.openedAt = Date.now();
    this.send({ type: "mount", token: this.token });
    this.startHeartbeat();
  };

  Connection.prototype.retryMount = function (ms) {
    var self = this;
    var socket = this.socket;
    setTimeout(function () {
      if (socket === self.socket && !self.rendered) {
        self.send({ type: "mount", token: self.token });
      }
    }, ms);
  };

  Connection.prototype.startHeartbeat = function () {
    var self = this;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(function () {
      self.send({ type: "ping" });
    }, HEARTBEAT_MS);
  };

  Connection.prototype.send = function (frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    this.socket.send(JSON.stringify(frame));
    return true;
  };

  /* Send an event with a fresh ref and return the ref, or null when it was not sent.
   *
   * `latest` marks events where only the most recent params matter (dj-input).
   * Such an event that cannot go out now, because the socket is down or the server
   * asked to wait, is kept and sent later, so the view ends up showing the field's
   * final value. Other events (clicks, submits) are dropped instead: replaying
   * stale clicks later would surprise the user. */
  Connection.prototype.pushEvent = function (name, params, latest) {
    var connected = this.socket && this.socket.readyState === WebSocket.OPEN;
    var busy = latest && name in this.inFlight &&
      Date.now() - this.inFlight[name].sentAt < IN_FLIGHT_MAX_MS;
    if (!connected || this.isHeld(name) || busy) {
      if (latest) {
        this.deferred[name] = params;
        delete this.deferredRefs[name];
      } else if (!connected) {
        this.showNotice("Not connected: reconnecting…", ERROR_NOTICE_MS);
      }
      return null;
    }

    var ref = nextRef++;
    this.send({ type: "event", event: name, params: params, ref: ref });
    this.pendingRefs[ref] = { name: name, params: params, latest: Boolean(latest) };
    if (latest) {
      this.inFlight[name] = { ref: ref, sentAt: Date.now() };
      var pace = this.activePace(name);
      if (pace) {
        this.holdEvents(name, pace.intervalMs);
      }
    }
    return ref;
  };

  /* Return the pacing of a "latest" event and extend it, or null when none applies. */
  Connection.prototype.activePace = function (name) {
    var pace = this.pace[name];
    if (!pace || Date.now() > pace.untilMs) {
      delete this.pace[name];
      return null;
    }
    pace.untilMs = Date.now() + PACE_WINDOW_MS;
    return pace;
  };

  /* Slow down a "latest" event after the server denied it `seconds` early. */
  Connection.prototype.slowDown = function (name, seconds) {
    var previous = this.pace[name] ? this.pace[name].intervalMs : 0;
    var intervalMs = Math.max(2 * seconds * 1000, 2 * previous, PACE_MIN_MS);
    this.pace[name] = {
      intervalMs: Math.min(intervalMs, PACE_MAX_MS),
      untilMs: Date.now() + PACE_WINDOW_MS,
    };
  };

  Connection.prototype.isHeld = function (name) {
    return Boolean(this.holdTimers[name] || this.holdTimers[ANY_EVENT]);
  };

  /* Stop sending the events under key for `ms` after a rate-limit denial. Sending
   * them anyway would only be denied again, and every denial counts as a warning
   * towards the server's abuse close. */
  Connection.prototype.holdEvents = function (key, ms) {
    var self = this;
    clearTimeout(this.holdTimers[key]);
    this.holdTimers[key] = setTimeout(function () {
      delete self.holdTimers[key];
      self.flushHeld();
    }, ms);
  };

  /* Send every kept "latest" event that is no longer on hold. */
  Connection.prototype.flushHeld = function () {
    var names = Object.keys(this.deferred);
    for (var i = 0; i < names.length; i++) {
      var name = names[i];
      if (this.isHeld(name)) {
        continue;
      }
      var params = this.deferred[name];
      delete this.deferred[name];
      delete this.deferredRefs[name];
      if (this.pushEvent(name, params, true) === null) {
        return;
      }
    }
  };

  Connection.prototype.onMessage = function (socket, event) {
    if (socket !== this.socket) {
      return;
    }
    var frame;
    try {
      frame = JSON.parse(event.data);
    } catch (err) {
      console.warn("djust_dist: ignoring a frame that is not JSON", err);
      return;
    }
    if (!frame || typeof frame !== "object") {
      return;
    }
    var pending = null;
    if (frame.ref !== undefined && frame.ref !== null) {
      pending = this.pendingRefs[frame.ref] || null;
      delete this.pendingRefs[frame.ref];
    }
    var handler = Object.prototype.hasOwnProperty.call(this.frameHandlers, frame.type)
      ? this.frameHandlers[frame.type]
      : null;
    if (handler) {
      handler.call(this, frame, pending);
    }
    // A reply settles the in-flight "latest" event: send input typed meanwhile.
    var flight = pending && pending.latest ? this.inFlight[pending.name] : null;
    if (flight && flight.ref === Number(frame.ref)) {
      delete this.inFlight[pending.name];
      this.flushHeld();
    }
  };

  Connection.prototype.frameHandlers = {
    render: function (frame) {
      var saved = captureFocus(this.root);
      this.root.innerHTML = frame.html;
      restoreFocus(this.root, saved);

      var firstRender = !this.rendered;
      this.rendered = true;
      this.state = "mounted";
      // After a (re)mount, bring the new view up to date with input typed while
      // the socket was down.
      if (firstRender) {
        this.flushHeld();
      }
    },
    error: function (frame) {
      this.showNotice(frame.message || "Error: " + frame.error, ERROR_NOTICE_MS);
    },
    rate_limit_exceeded: function (frame, pending) {
      var seconds = Number(frame.retry_after) || 0;
      this.showNotice("Too many requests: try again in " + formatSeconds(seconds), seconds * 1000);

      if (pending && pending.latest) {
        this.keepDenied(pending, Number(frame.ref));
        this.slowDown(pending.name, seconds);
      }
      this.holdEvents(frame.event ? String(frame.event) : ANY_EVENT, seconds * 1000);

      // A denial before the first render can only be the mount: ask again later.
      if (!frame.event && !this.rendered) {
        this.retryMount(seconds * 1000);
      }
    },
    connection_rejected: function (frame) {
      this.lastRejection = {
        reason: frame.reason,
        retryAfter: Number(frame.retry_after) || 0,
      };
    },
    pong: function () {},
  };

  /* Keep the params of a denied "latest" event, unless the kept params are newer:
   * input typed during the hold, or a later event that was also denied. Several
   * events may be in flight when the first denial arrives, so the newest must win.
   * NOTE: events still in flight when the socket closes are dropped, not kept. */
  Connection.prototype.keepDenied = function (pending, ref) {
    var name = pending.name;
    if (name in this.deferred && !(this.deferredRefs[name] < ref)) {
      return;
    }
    this.deferred[name] = pending.params;
    this.deferredRefs[name] = ref;
  };

  Connection.prototype.onClose = function (socket, event) {
    if (socket !== this.socket) {
      return;
    }
    clearInterval(this.heartbeatTimer);
    this.socket = null;
    this.pendingRefs = emptyMap();
    this.inFlight = emptyMap();
    this.clearHolds();

    var record = { time: Date.now(), code: event.code, reason: event.reason };
    this.closes.push(record);
    this.lastClose = record;

    if (this.stopped) {
      this.state = "stopped";
      return;
    }
    if (event.code === CLOSE_INVALID_TOKEN) {
      this.stop("This page has expired: reload it to reconnect.");
      return;
    }
    this.scheduleReconnect(event.code);
  };

  /* Wait before reconnecting. Only a socket that stayed open for STABLE_AFTER_MS and
   * rendered resets the backoff, so a server that accepts and then drops at once
   * still gets growing delays. After a 4429 the server refuses this IP for a
   * cooldown, so the wait is at least the retry_after it sent (or the cooldown
   * hint), stretched only upward by the jitter. */
  Connection.prototype.scheduleReconnect = function (code) {
    var wasStable = this.rendered && this.openedAt !== null &&
      Date.now() - this.openedAt >= STABLE_AFTER_MS;
    if (wasStable) {
      this.backoffAttempt = 0;
    }

    var delay = backoffDelay(this.backoffAttempt);
    this.backoffAttempt += 1;

    var floorSeconds = null;
    if (this.lastRejection) {
      floorSeconds = this.lastRejection.retryAfter;
    } else if (code === CLOSE_ABUSE) {
      floorSeconds = this.cooldownHint;
    }
    if (floorSeconds !== null) {
      delay = Math.max(delay, floorSeconds * 1000 * (1 + Math.random() * JITTER));
      this.showNotice(this.rejectionText(delay / 1000), delay);
    } else {
      this.showNotice("Connection lost: reconnecting in " + formatSeconds(delay / 1000), delay);
    }

    this.state = "waiting";
    this.nextDelayMs = delay;
    var self = this;
    this.reconnectTimer = setTimeout(function () {
      self.connect();
    }, delay);
  };

  /* Drop rate-limit holds: kept "latest" events are sent after the next mount. */
  Connection.prototype.clearHolds = function () {
    var keys = Object.keys(this.holdTimers);
    for (var i = 0; i < keys.length; i++) {
      clearTimeout(this.holdTimers[keys[i]]);
    }
    this.holdTimers = emptyMap();
  };

  Connection.prototype.rejectionText = function (seconds) {
    var reason = this.lastRejection ? this.lastRejection.reason : "abuse";
    var why = {
      limit: "Too many connections from your address",
      cooldown: "Too many requests from your address",
      unavailable: "The server is unavailable",
      abuse: "Disconnected for too many invalid or rejected requests",
    }[reason] || "Connection refused";
    return why + ": reconnecting in " + formatSeconds(seconds);
  };

  /* Stop for good: no reconnect. A message, if given, stays on screen. */
  Connection.prototype.stop = function (message) {
    this.stopped = true;
    this.state = "stopped";
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    if (message) {
      this.showNotice(message, null);
    }
    if (this.socket) {
      this.socket.close(1000);
    }
  };

  Connection.prototype.resume = function () {
    if (!this.stopped || (this.lastClose && this.lastClose.code === CLOSE_INVALID_TOKEN)) {
      return;
    }
    this.stopped = false;
    this.connect();
  };

  Connection.prototype.bindEvents = function () {
    var self = this;
    var root = this.root;

    root.addEventListener("click", function (event) {
      var target = event.target.closest("[dj-click]");
      if (!target || !root.contains(target)) {
        return;
      }
      event.preventDefault();
      self.pushEvent(target.getAttribute("dj-click"), valueParams(target));
    });

    root.addEventListener("input", function (event) {
      var input = event.target;
      if (!input.hasAttribute || !input.hasAttribute("dj-input")) {
        return;
      }
      self.onInput(input);
    });

    root.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.hasAttribute("dj-submit")) {
        return;
      }
      event.preventDefault();
      self.pushEvent(form.getAttribute("dj-submit"), formParams(form));
    });
  };

  /* Send one event per input event, because the server rate-limits. dj-debounce="<ms>"
   * lets a page coalesce keystrokes and send only the latest value. */
  Connection.prototype.onInput = function (input) {
    var self = this;
    var name = input.getAttribute("dj-input");
    var key = input.name || "value";
    var fire = function () {
      var params = {};
      params[key] = input.value;
      self.pushEvent(name, params, true);
    };

    var debounceMs = parseInt(input.getAttribute("dj-debounce"), 10);
    if (!(debounceMs > 0)) {
      fire();
      return;
    }
    clearTimeout(this.debounceTimers.get(input));
    this.debounceTimers.set(input, setTimeout(fire, debounceMs));
  };

  /* Return a copy of the state, so tests can read it but not change the client. */
  Connection.prototype.snapshot = function () {
    return {
      url: this.url,
      state: this.state,
      connectAttempts: this.connectAttempts,
      backoffAttempt: this.backoffAttempt,
      nextDelayMs: this.nextDelayMs,
      lastClose: this.lastClose ? Object.assign({}, this.lastClose) : null,
      lastRejection: this.lastRejection ? Object.assign({}, this.lastRejection) : null,
      closes: this.closes.map(function (close) {
        return Object.assign({}, close);
      }),
      pendingRefs: Object.keys(this.pendingRefs).length,
      deferredEvents: Object.keys(this.deferred),
      heldEvents: Object.keys(this.holdTimers),
      pacedEvents: Object.keys(this.pace),
    };
  };

  function start() {
    var roots = document.querySelectorAll("[data-djust-root]");
    for (var i = 0; i < roots.length; i++) {
      var connection = new Connection(roots[i]);
      connections.push(connection);
      connection.connect();
    }
  }

  // Closing on page exit keeps the close from counting as an abnormal drop.
  window.addEventListener("pagehide", function () {
    connections.forEach(function (connection) {
      connection.stop(null);
    });
  });

  // A page restored from the back-forward cache was stopped by pagehide above.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    connections.forEach(function (connection) {
      connection.resume();
    });
  });

  function firstSnapshot() {
    return connections.length ? connections[0].snapshot() : null;
  }

  /* The top-level fields describe the first root, which is the only one on most
   * pages. The connections field lists every root. */
  window.djustDist = Object.freeze({
    get connections() {
      return connections.map(function (connection) {
        return connection.snapshot();
      });
    },
    get state() {
      var first = firstSnapshot();
      return first ? first.state : "idle";
    },
    get connectAttempts() {
      var first = firstSnapshot();
      return first ? first.connectAttempts : 0;
    },
    get lastClose() {
      var first = firstSnapshot();
      return first ? first.lastClose : null;
    },
    get closes() {
      var first = firstSnapshot();
      return first ? first.closes : [];
    },
    get nextDelayMs() {
      var first = firstSnapshot();
      return first ? first.nextDelayMs : null;
    },
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
