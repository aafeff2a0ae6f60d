/**
 * battle.js: client side of one arena battle (ES module, no build step).
 *
 * ─── Page setup (the import map must come before any module script) ─────────
 *
 *   <link rel="stylesheet" href="/static/arena/arena.css">
 *   <script src="/static/vendor/htmx/htmx.min.js"></script>
 *   <script type="importmap">
 *   {"imports": {
 *     "three": "/static/vendor/three/three.module.min.js",
 *     "@google/model-viewer": "/static/vendor/model-viewer/model-viewer-module.min.js",
 *     "@mkkellogg/gaussian-splats-3d": "/static/vendor/gaussian-splats-3d/gaussian-splats-3d.module.js"
 *   }}
 *   </script>
 *   <script type="module" src="/static/arena/battle.js"></script>
 *
 * Do NOT load model-viewer yourself: battle.js sets `self.ModelViewerElement`
 * (Draco / KTX2 / meshopt decoder locations under /static/vendor/, resolved
 * relative to this file) and then imports "@google/model-viewer" on demand, so
 * nothing is ever fetched from a CDN. three.js is loaded only when a battle
 * has a mesh or splat slot, and exactly one copy of it is shared by
 * model-viewer, the splat viewer and this file.
 *
 * ─── DOM contract ────────────────────────────────────────────────────────────
 *
 *   <section class="battle" data-battle-id="…" data-mode="pairwise|best_of_k|rank_k" data-k="4">
 *     <div class="media-grid" data-count="2|3|4">
 *       <figure class="slot" data-slot="A" data-media="image|video|mesh|splat" data-src="URL">
 *         <figcaption class="slot-label">A</figcaption>
 *         image:  <img src="URL" alt="Output A">
 *         video:  <video src="URL" muted loop playsinline preload="auto"></video>
 *         mesh:   <model-viewer src="URL.glb" camera-controls interaction-prompt="none"
 *                               disable-pan></model-viewer>
 *         splat:  <div class="splat-host"></div>   (viewer is created in it from data-src;
 *                 battle.js gives it role="application", aria-roledescription, an
 *                 aria-label naming the slot and tabindex="0" unless the page did)
 *         (optional, anywhere in the figure after the media:
 *          <div class="rank-picker">…</div>, <div class="reveal"><span class="slot-model">Name</span></div>)
 *       </figure>
 *       … 2 to 4 slots; mesh and splat slots may be mixed in one battle
 *     </div>
 *     <div class="video-controls" hidden>
 *       <button type="button" class="vc-play">Play</button>
 *       <input type="range" class="vc-scrub" min="0" max="1000" value="0">
 *       <span class="vc-time"></span>
 *     </div>
 *     … vote form etc. (not touched by this file)
 *   </section>
 *
 *   If the media element is missing from a slot, battle.js creates it from
 *   data-media + data-src. Optional slot attribute for splats:
 *   data-splat-rotation="x,y,z,w" (quaternion applied to the scene, e.g. to turn
 *   a Z-up or COLMAP (Y-down) capture into Y-up).
 *
 * ─── What battle.js writes (tests and templates may rely on these) ──────────
 *
 *   .slot[data-loaded="true"]     media really loaded (img decoded; video
 *                                 `loadeddata`; model-viewer `load`; splat
 *                                 scene promise resolved)
 *   .slot[data-error="message"]   loading failed (the message is shown in the tile)
 *   .battle[data-ready="true"]    every slot loaded; an `arena:ready` event
 *                                 (bubbles) is dispatched on the .battle
 *   .battle[data-error="…"]       at least one slot failed; `arena:error` event
 *                                 (bubbles, detail {slot, message})
 *   .battle[data-initialized="true"]
 *   While a slot has neither data-loaded nor data-error, arena.css shows a spinner.
 *
 * ─── Behaviour ───────────────────────────────────────────────────────────────
 *
 *   Videos: muted, looping, one play/pause button + one scrub bar drive all of
 *   them; a rAF loop re-aligns any video drifting > 0.1 s from the first one.
 *   Key "p" (outside text fields, no modifiers) toggles play, unless single-key
 *   shortcuts are off (<body data-vote-shortcuts="off">, see vote.js); Space is NOT
 *   bound. 3D: every model-viewer and splat viewer of a battle share one camera
 *   orbit {theta, phi, r, fov} (three.js Spherical convention, Y up, same as
 *   model-viewer's camera-orbit; fov vertical, degrees) where r is the camera
 *   distance divided by the object's bounding-box half-diagonal (the camera
 *   looks at the box centre), so dragging / zooming any of them moves all the
 *   others. Arrow keys on a focused splat viewer turn (left/right) and tilt
 *   (up/down) the shared orbit by 10deg, as model-viewer's own arrow keys do.
 *   All start at theta 0, phi 75deg, r 4, fov 30deg (this overrides a
 *   template's camera-orbit / field-of-view). For consistent framing
 *   battle.js sets on each model-viewer: disable-pan, min/max-field-of-view
 *   10deg/45deg and min/max-camera-orbit so that r stays within [1.5, 12] and
 *   phi within [5deg, 175deg] in every viewer (theta free). model-viewer changes are
 *   propagated only for `camera-change` with detail.source ===
 *   'user-interaction'; splat OrbitControls changes only when the camera left
 *   the position last applied from the link (user drag/wheel and its damping
 *   tail), so programmatic updates never loop.
 *
 *   Loading: model-viewer gets loading="eager" and <img loading="lazy"> is
 *   switched to eager (a battle is "ready" without scrolling). Splats load the
 *   whole .ply (no Range requests, no SharedArrayBuffer, so no COOP/COEP
 *   headers needed); a splat load without progress for 45 s is failed. The
 *   splat library's own window key bindings (C, I, O, P, arrows…) and
 *   click-to-refocus are removed; its canvas uses touch-action: pan-y so
 *   phones can still scroll past it.
 *
 *   initBattle(root) runs on DOMContentLoaded for every .battle and again on
 *   htmx:load for swapped-in content (idempotent). When a .battle leaves the
 *   document (htmx swap) it is torn down: listeners removed, videos paused,
 *   splat viewers disposed and their WebGL contexts released.
 *
 * Exports: initBattle(root), destroyBattle(root), getBattle(root) → controller
 * with .orbits() (per-slot current orbit, for tests/debugging), .ready
 * (Promise), .playAll(), .pauseAll(), .seekAll(seconds).
 */

const VENDOR = new URL('../vendor/', import.meta.url);

// model-viewer reads this global when its elements are constructed; it must be
// set before "@google/model-viewer" is imported. Values already set by the page win.
{
  const cfg = (self.ModelViewerElement = self.ModelViewerElement || {});
  cfg.dracoDecoderLocation ??= new URL('three/draco/', VENDOR).href;
  cfg.ktx2TranscoderLocation ??= new URL('three/basis/', VENDOR).href;
  cfg.meshoptDecoderLocation ??= new URL('meshoptimizer/meshopt_decoder.js', VENDOR).href;
}

const DRIFT_TOLERANCE_S = 0.1;
// A splat load that receives no bytes for this long is failed: the library
// can die inside its stream parser (e.g. on a malformed .ply) without ever
// settling its promise.
const SPLAT_STALL_MS = 45_000;
// Once downloaded, building the scene is CPU work (parse, upload, first sort)
// that reports nothing until it ends; on a starved machine (software WebGL,
// several viewers) it can take long, so it gets its own, longer budget.
const SPLAT_BUILD_MS = 180_000;
// The library's LoaderStatus.Downloading (LoaderStatus itself is not exported).
const SPLAT_DOWNLOADING = 0;
// Every 3D viewer of a battle starts here: theta/phi as model-viewer's default
// "0deg 75deg …", r = camera distance / bounding-box half-diagonal, fov =
// model-viewer's default 30deg (vertical).
const DEFAULT_ORBIT = Object.freeze({ theta: 0, phi: (75 * Math.PI) / 180, r: 4.0, fov: 30 });
// Limits identical for every viewer (r in the same normalised units), so a
// shared orbit is never clamped differently in two tiles. model-viewer zooms
// by moving radius and fov together across these ranges; the splat viewers'
// OrbitControls dolly the radius only (their fov follows the link).
const R_MIN = 1.5;
const R_MAX = 12.0;
const FOV_MIN = 10;
const FOV_MAX = 45;
const PHI_MIN = (5 * Math.PI) / 180;
const PHI_MAX = Math.PI - PHI_MIN;
// One arrow key press on a focused splat viewer turns the shared orbit by this much (radians).
const KEY_ORBIT_STEP = (10 * Math.PI) / 180;

const controllers = new WeakMap();
const live = new Set();

let modelViewerPromise = null;
function loadModelViewer() {
  modelViewerPromise ??= import('@google/model-viewer').then(() =>
    customElements.whenDefined('model-viewer'),
  );
  return modelViewerPromise;
}

let splatLibPromise = null;
function loadSplatLib() {
  splatLibPromise ??= Promise.all([import('three'), import('@mkkellogg/gaussian-splats-3d')]);
  return splatLibPromise;
}

const errorMessage = (e) =>
  (e && (e.message || (e.detail && (e.detail.sourceError?.message || e.detail.type)))) ||
  String(e || 'unknown error');

/** Resolve on the first of `okTypes`, reject on the first of `errTypes`. */
function once(target, okTypes, errTypes, signal, { capture = false } = {}) {
  return new Promise((resolve, reject) => {
    const ac = new AbortController();
    const opts = { signal: ac.signal, capture };
    const done = (fn) => (ev) => {
      ac.abort();
      fn(ev);
    };
    for (const t of okTypes) target.addEventListener(t, done(resolve), opts);
    for (const t of errTypes) target.addEventListener(t, done(reject), opts);
    signal?.addEventListener(
      'abort',
      () => {
        ac.abort();
        reject(new DOMException('battle destroyed', 'AbortError'));
      },
      { once: true, signal: ac.signal },
    );
  });
}

// ─── Camera linking ──────────────────────────────────────────────────────────

class OrbitLink {
  constructor() {
    this.state = null;
    this.members = new Set();
  }

  /** A member became ready: it adopts the shared orbit (seeded with DEFAULT_ORBIT). */
  join(member) {
    this.members.add(member);
    this.state ??= { ...DEFAULT_ORBIT };
    member.apply(this.state);
  }

  leave(member) {
    this.members.delete(member);
  }

  publish(from, state) {
    if (!state || !Number.isFinite(state.theta + state.phi + state.r + state.fov)) return;
    this.state = { ...state };
    for (const m of this.members) if (m !== from) m.apply(this.state);
  }
}

function halfDiagonal(x, y, z) {
  const h = 0.5 * Math.hypot(x, y, z);
  return h > 1e-9 ? h : 1;
}

// ─── Slots ───────────────────────────────────────────────────────────────────

class Slot {
  constructor(battle, fig) {
    this.battle = battle;
    this.fig = fig;
    this.name = fig.dataset.slot || '?';
    this.kind = fig.dataset.media || 'image';
    this.src = fig.dataset.src || '';
    this.orbitMember = null;
  }

  /** Find or create the media element after the caption. */
  ensure(selector, create) {
    let el = this.fig.querySelector(selector);
    if (!el) {
      el = create();
      const cap = this.fig.querySelector('.slot-label');
      if (cap) cap.after(el);
      else this.fig.prepend(el);
    }
    return el;
  }

  async load(signal) {
    switch (this.kind) {
      case 'image':
        return this.loadImage(signal);
      case 'video':
        return this.loadVideo(signal);
      case 'mesh':
        return this.loadMesh(signal);
      case 'splat':
        return this.loadSplat(signal);
      default:
        throw new Error(`unknown data-media "${this.kind}"`);
    }
  }

  async loadImage(signal) {
    const img = this.ensure('img', () => {
      const el = document.createElement('img');
      el.alt = `Output ${this.name}`;
      el.src = this.src;
      return el;
    });
    this.media = img;
    if (img.loading === 'lazy') img.loading = 'eager'; // "ready" must not wait for a scroll
    if (img.complete && img.naturalWidth === 0 && img.currentSrc) {
      throw new Error(`image failed to load: ${img.currentSrc}`);
    }
    try {
      await img.decode();
    } catch {
      if (signal.aborted) throw new DOMException('battle destroyed', 'AbortError');
      throw new Error(`image failed to load: ${img.currentSrc || img.src}`);
    }
  }

  async loadVideo(signal) {
    const v = this.ensure('video', () => {
      const el = document.createElement('video');
      el.src = this.src;
      el.preload = 'auto';
      return el;
    });
    v.muted = true;
    v.defaultMuted = true;
    v.loop = true;
    v.playsInline = true;
    v.setAttribute('muted', '');
    v.setAttribute('playsinline', '');
    v.removeAttribute('autoplay');
    v.removeAttribute('controls');
    if (!v.preload || v.preload === 'none') v.preload = 'auto';
    this.media = v;
    const fail = () => new Error(`video failed to load: ${v.error?.message || v.currentSrc || v.src}`);
    if (v.error) throw fail();
    if (v.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) return;
    if (v.networkState === HTMLMediaElement.NETWORK_EMPTY) v.load();
    try {
      await once(v, ['loadeddata'], ['error'], signal, { capture: true });
    } catch (e) {
      if (e?.name === 'AbortError') throw e;
      throw fail();
    }
  }

  async loadMesh(signal) {
    await loadModelViewer();
    const mv = this.ensure('model-viewer', () => {
      const el = document.createElement('model-viewer');
      el.setAttribute('src', this.src);
      el.setAttribute('alt', `Output ${this.name}`);
      el.setAttribute('camera-controls', '');
      el.setAttribute('interaction-prompt', 'none');
      el.setAttribute('disable-pan', '');
      el.setAttribute('touch-action', 'pan-y');
      return el;
    });
    this.media = mv;
    // Linked cameras need a fixed target (no pan) and the same normalised
    // limits everywhere (radius limits are set in metres once the size is known).
    mv.disablePan = true;
    mv.setAttribute('disable-pan', '');
    // model-viewer defaults to lazy loading (only once scrolled into view);
    // a battle is ready only when every output is loaded, so load now.
    if (!mv.hasAttribute('loading')) mv.setAttribute('loading', 'eager');
    mv.setAttribute('min-field-of-view', `${FOV_MIN}deg`);
    mv.setAttribute('max-field-of-view', `${FOV_MAX}deg`);
    if (!mv.loaded) {
      try {
        await once(mv, ['load'], ['error'], signal);
      } catch (e) {
        if (e?.name === 'AbortError') throw e;
        throw new Error(`model failed to load: ${mv.src} (${errorMessage(e)})`);
      }
    }
    if (signal.aborted) return;
    await mv.updateComplete;

    let size = 1;
    const measure = () => {
      const d = mv.getDimensions();
      size = halfDiagonal(d.x, d.y, d.z);
      mv.minCameraOrbit = `auto ${PHI_MIN}rad ${R_MIN * size}m`;
      mv.maxCameraOrbit = `auto ${PHI_MAX}rad ${R_MAX * size}m`;
    };
    measure();
    await mv.updateComplete;
    const member = {
      slot: this,
      read: () => {
        const o = mv.getCameraOrbit();
        return { theta: o.theta, phi: o.phi, r: o.radius / size, fov: mv.getFieldOfView() };
      },
      apply: (s) => {
        mv.cameraOrbit = `${s.theta}rad ${s.phi}rad ${s.r * size}m`;
        // model-viewer widens the fov it is given for objects wider than the
        // element (scene.adjustedFoV); pre-compensate so its camera ends up
        // with exactly s.fov, like the splat cameras.
        const aspect = mv.clientWidth > 0 && mv.clientHeight > 0 ? mv.clientWidth / mv.clientHeight : 1;
        const widen = Math.max(1, (mv.getIdealAspect() || 0) / aspect);
        const framed = (2 * Math.atan(Math.tan((s.fov * Math.PI) / 360) / widen) * 180) / Math.PI;
        mv.fieldOfView = `${framed}deg`;
        mv.jumpCameraToGoal();
      },
    };
    mv.addEventListener(
      'camera-change',
      (ev) => {
        if (ev.detail?.source === 'user-interaction') this.battle.link.publish(member, member.read());
      },
      { signal },
    );
    // A new src (same element) re-frames: re-measure and re-sync.
    mv.addEventListener(
      'load',
      () => {
        measure();
        if (this.battle.link.state) member.apply(this.battle.link.state);
      },
      { signal },
    );
    this.orbitMember = member;
    this.battle.link.join(member);
  }

  async loadSplat(signal) {
    const host = this.ensure('.splat-host', () => {
      const el = document.createElement('div');
      el.className = 'splat-host';
      return el;
    });
    labelSplatHost(host, this.name);
    this.media = host;
    if (!this.src) throw new Error('splat slot has no data-src');
    const [THREE, GS] = await loadSplatLib();
    if (signal.aborted) return;

    const renderer = createSplatRenderer(THREE, host);
    const viewer = createSplatViewer(GS, host, renderer);
    this.battle.cleanups.push(observeSplatHost(host, renderer, viewer));
    await this.addSplatScene(GS, viewer, signal);
    if (signal.aborted) return;

    const { center, size } = splatBounds(THREE, viewer.splatMesh);
    const rig = { viewer, camera: viewer.camera, controls: viewer.controls, size };
    fitSplatCamera(rig, center);
    this.linkSplatCamera(THREE, rig);
    orbitWithKeys(host, this.battle.link, this.orbitMember, signal);
    rig.controls.update();
    viewer.start();
    viewer.forceRenderNextFrame();
    this.viewer = viewer;
  }

  /** Load this slot's .ply into `viewer`; failures become a readable Error (AbortError once destroyed). */
  async addSplatScene(GS, viewer, signal) {
    const rotation = splatRotation(this.fig);
    try {
      await loadSplatScene(GS, viewer, this.src, rotation);
    } catch (e) {
      if (signal.aborted) throw new DOMException('battle destroyed', 'AbortError');
      throw new Error(`splat failed to load: ${errorMessage(e)}`);
    }
  }

  /**
   * Make the splat camera a member of the battle's OrbitLink: the link places it,
   * and the user's own moves of it are published to the other viewers.
   */
  linkSplatCamera(THREE, rig) {
    const { camera, controls, size } = rig;
    const sync = { applying: false, appliedPos: new THREE.Vector3() };
    const member = splatOrbitMember(this, THREE, rig, sync);
    // OrbitControls fires 'change' for every camera move it makes in update().
    // A move is the user's (drag, wheel, or the damping tail after them) exactly
    // when the camera has left the position we last applied from the link.
    const eps2 = (size * 1e-6) ** 2;
    controls.addEventListener('change', () => {
      if (sync.applying || camera.position.distanceToSquared(sync.appliedPos) <= eps2) return;
      this.battle.link.publish(member, member.read());
    });

    this.orbitMember = member;
    this.battle.link.join(member);
  }
}

// ─── Splat viewer helpers ────────────────────────────────────────────────────

/**
 * The host is an interactive 3D view: an "application" (it handles its own arrow keys, like
 * model-viewer), focusable, named after its slot. Attributes the page already set are kept.
 */
function labelSplatHost(host, name) {
  const defaults = {
    role: 'application',
    'aria-roledescription': '3D viewer',
    'aria-label': `Output ${name}, 3D splat; drag or use the arrow keys to orbit`,
    tabindex: '0',
  };
  for (const [attr, value] of Object.entries(defaults)) if (!host.hasAttribute(attr)) host.setAttribute(attr, value);
}

/**
 * Arrow keys on the focused splat host orbit the shared camera (left/right turn, up/down tilt),
 * so the view needs no mouse. The move is published to every viewer of the battle, this one
 * included. Only while the host has focus: vote.js leaves keys aimed at .splat-host alone.
 */
function orbitWithKeys(host, link, member, signal) {
  host.addEventListener(
    'keydown',
    (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || !member) return;
      const turn = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
      if (!turn) return;
      e.preventDefault();
      const s = member.read();
      link.publish(null, {
        ...s,
        theta: s.theta + turn[0] * KEY_ORBIT_STEP,
        phi: Math.min(PHI_MAX, Math.max(PHI_MIN, s.phi + turn[1] * KEY_ORBIT_STEP)),
      });
    },
    { signal },
  );
}

/** A WebGL renderer whose canvas fills `host` (we own the canvas and its context). */
function createSplatRenderer(THREE, host) {
  const renderer = new THREE.WebGLRenderer({ antialias: false, alpha: true, precision: 'highp' });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.setClearColor(0x000000, 0);
  const w0 = Math.max(1, host.clientWidth);
  const h0 = Math.max(1, host.clientHeight);
  renderer.setSize(w0, h0);
  // The host names the view (role "application", see labelSplatHost); the canvas adds nothing.
  renderer.domElement.setAttribute('aria-hidden', 'true');
  host.appendChild(renderer.domElement);
  return renderer;
}

/** The splat library's viewer on `renderer`, idle unless something changes, with no own UI. */
function createSplatViewer(GS, host, renderer) {
  const viewer = new GS.Viewer({
    rootElement: host,
    renderer, // external renderer: we own the canvas and its WebGL context
    selfDrivenMode: true,
    useBuiltInControls: true,
    sharedMemoryForWorkers: false, // no SharedArrayBuffer => no COOP/COEP headers needed
    gpuAcceleratedSort: false,
    dynamicScene: false,
    renderMode: GS.RenderMode.OnChange,
    // Show the scene at once. The library keeps re-rendering every frame until
    // its (invisible, in Instant mode) reveal animation ends: ~1500 frames at
    // the default rate; the multiplier cuts that to ~30 so the viewer idles.
    sceneRevealMode: GS.SceneRevealMode.Instant,
    sceneFadeInRateMultiplier: 50,
    logLevel: GS.LogLevel.None,
    cameraUp: [0, 1, 0],
    initialCameraPosition: [0, 0, 4],
    initialCameraLookAt: [0, 0, 0],
  });
  removeSplatInputHandlers(viewer, renderer);
  return viewer;
}

/** Drop the library's key bindings and click-to-refocus; let vertical swipes scroll. */
function removeSplatInputHandlers(viewer, renderer) {
  // The library binds keys on window (P, C, I, O, arrows…) and click-to-refocus;
  // both would break the battle (keys are for voting, the orbit target is fixed).
  viewer.removeEventHandlers();
  // OrbitControls sets touch-action: none; like model-viewer's touch-action="pan-y",
  // let vertical swipes scroll the page on phones (horizontal swipes still orbit).
  renderer.domElement.style.touchAction = 'pan-y';
  for (const c of [viewer.perspectiveControls, viewer.orthographicControls]) {
    if (c && c._domElementKeyEvents) c.stopListenToKeyEvents();
  }
}

/**
 * Keep the canvas sized to `host`. Returns the battle cleanup: stop observing,
 * dispose the viewer and the renderer, release the WebGL context, remove the canvas.
 */
function observeSplatHost(host, renderer, viewer) {
  const ro = new ResizeObserver(() => {
    const w = host.clientWidth;
    const h = host.clientHeight;
    if (w > 0 && h > 0) {
      renderer.setSize(w, h);
      viewer.forceRenderNextFrame();
    }
  });
  ro.observe(host);
  return async () => {
    ro.disconnect();
    try {
      await viewer.dispose();
    } catch {
      /* ignore */
    }
    renderer.dispose();
    renderer.forceContextLoss();
    renderer.domElement.remove();
  };
}

/** The slot's data-splat-rotation quaternion as numbers (used only when it has 4). */
function splatRotation(fig) {
  return (fig.dataset.splatRotation || '')
    .split(',')
    .map(Number)
    .filter((n) => Number.isFinite(n));
}

/** Add the whole .ply at `src` to `viewer`; rejects on failure, after SPLAT_STALL_MS without
 * download progress, or after SPLAT_BUILD_MS of building. */
async function loadSplatScene(GS, viewer, src, rotation) {
  // addSplatScene returns the library's AbortablePromise, whose then() drops
  // rejections (so `await` on it would hang forever on a failed load); its
  // .promise is the underlying native Promise, which does reject.
  const progress = { at: performance.now(), building: false };
  const loading = viewer.addSplatScene(src, {
    // A splat slot is always a .ply (MediaType.SPLAT); its per-battle link has no extension
    // for the library to guess the format from.
    format: GS.SceneFormat.Ply,
    showLoadingUI: false,
    progressiveLoad: false,
    splatAlphaRemovalThreshold: 1,
    onProgress: (_percent, _label, status) => {
      const building = status !== SPLAT_DOWNLOADING;
      if (!progress.building || !building) progress.at = performance.now();
      progress.building ||= building;
    },
    ...(rotation.length === 4 ? { rotation } : {}),
  });
  const watchdog = stallWatchdog(loading, progress);
  try {
    await Promise.race([loading.promise ?? loading, watchdog.stalled]);
  } finally {
    watchdog.stop();
  }
}

/** `stalled` rejects (and aborts `loading`) once `progress.at` is older than the phase allows:
 * SPLAT_STALL_MS while downloading, SPLAT_BUILD_MS from the start of building. */
function stallWatchdog(loading, progress) {
  let timer = 0;
  const stalled = new Promise((_, reject) => {
    timer = setInterval(() => {
      const limit = progress.building ? SPLAT_BUILD_MS : SPLAT_STALL_MS;
      if (performance.now() - progress.at > limit) {
        const what = progress.building ? 'still building after' : 'no progress for';
        reject(new Error(`${what} ${limit / 1000} s`));
        loading.abort?.('stalled');
      }
    }, 1000);
  });
  return { stalled, stop: () => clearInterval(timer) };
}

const quantile = (sorted, f) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(f * (sorted.length - 1))))];

/** Sorts `arr` in place; [1st, 99th] percentile, or [min, max] for 200 values or fewer. */
function robustRange(arr) {
  arr.sort((a, b) => a - b);
  return arr.length > 200 ? [quantile(arr, 0.01), quantile(arr, 0.99)] : [arr[0], arr[arr.length - 1]];
}

/** Robust bounds (1st–99th percentile per axis over a sample of centres): box centre and half-diagonal. */
function splatBounds(THREE, mesh) {
  const n = mesh.getSplatCount();
  const step = Math.max(1, Math.floor(n / 20000));
  const xs = [];
  const ys = [];
  const zs = [];
  const p = new THREE.Vector3();
  for (let i = 0; i < n; i += step) {
    mesh.getSplatCenter(i, p);
    xs.push(p.x);
    ys.push(p.y);
    zs.push(p.z);
  }
  const [x0, x1] = robustRange(xs);
  const [y0, y1] = robustRange(ys);
  const [z0, z1] = robustRange(zs);
  const center = new THREE.Vector3((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2);
  return { center, size: halfDiagonal(x1 - x0, y1 - y0, z1 - z0) };
}

/** Clip planes and OrbitControls limits for an object of half-diagonal `size` at `center`. */
function fitSplatCamera({ camera, controls, size }, center) {
  camera.near = size * 0.01;
  camera.far = size * 1000;
  camera.updateProjectionMatrix();
  controls.target.copy(center);
  controls.enablePan = false;
  controls.minDistance = size * R_MIN;
  controls.maxDistance = size * R_MAX;
  controls.minPolarAngle = PHI_MIN;
  controls.maxPolarAngle = PHI_MAX;
  controls.rotateSpeed = 0.6;
  controls.dampingFactor = 0.12; // settles in ~40 frames, close to model-viewer's feel
}

/**
 * OrbitLink member for a splat viewer: read() the camera as a normalised orbit,
 * apply() one. `sync.applying` is true while apply() moves the camera and
 * `sync.appliedPos` is where it left it.
 */
function splatOrbitMember(slot, THREE, { viewer, camera, controls, size }, sync) {
  const sph = new THREE.Spherical();
  const off = new THREE.Vector3();
  return {
    slot,
    read: () => {
      off.copy(camera.position).sub(controls.target);
      sph.setFromVector3(off);
      return { theta: sph.theta, phi: sph.phi, r: sph.radius / size, fov: camera.fov };
    },
    apply: (s) => {
      sync.applying = true;
      try {
        // Flush (and so cancel) any damping left over from an earlier drag,
        // then place the camera and let the controls clamp / look at the target.
        controls.enableDamping = false;
        controls.update();
        const phi = Math.min(PHI_MAX, Math.max(PHI_MIN, s.phi));
        const r = Math.min(R_MAX, Math.max(R_MIN, s.r));
        off.setFromSphericalCoords(r * size, phi, s.theta);
        camera.position.copy(controls.target).add(off);
        camera.fov = Math.min(FOV_MAX, Math.max(FOV_MIN, s.fov));
        camera.updateProjectionMatrix();
        controls.update();
        controls.enableDamping = true;
        camera.updateMatrixWorld();
        sync.appliedPos.copy(camera.position);
      } finally {
        sync.applying = false;
      }
      viewer.forceRenderNextFrame();
    },
  };
}

// ─── Video sync ──────────────────────────────────────────────────────────────

const fmtTime = (t) => {
  if (!Number.isFinite(t) || t < 0) t = 0;
  const m = Math.floor(t / 60);
  const s = Math.floor(t % 60);
  const cs = Math.floor((t % 1) * 10);
  return `${m}:${String(s).padStart(2, '0')}.${cs}`;
};

class VideoSync {
  constructor(battle, videos, bar, signal) {
    this.battle = battle;
    this.videos = videos;
    this.master = videos[0];
    this.bar = bar;
    this.signal = signal;
    this.playing = false;
    this.scrubbing = false;
    this.raf = 0;
    this.btn = bar?.querySelector('.vc-play') || null;
    this.scrub = bar?.querySelector('.vc-scrub') || null;
    this.timeEl = bar?.querySelector('.vc-time') || null;

    const on = (el, type, fn, opts = {}) => el && el.addEventListener(type, fn, { signal, ...opts });
    if (bar) bar.hidden = false;
    if (this.btn) {
      this.btn.setAttribute('aria-pressed', 'false');
      on(this.btn, 'click', () => this.toggle());
    }
    if (this.scrub) {
      if (!this.scrub.hasAttribute('aria-label')) this.scrub.setAttribute('aria-label', 'Seek all videos');
      on(this.scrub, 'input', () => this.seekAll(this.fraction() * this.duration()));
      on(this.scrub, 'pointerdown', () => (this.scrubbing = true));
      on(window, 'pointerup', () => (this.scrubbing = false));
      on(this.scrub, 'change', () => (this.scrubbing = false));
    }
    if (this.timeEl) this.timeEl.setAttribute('aria-live', 'off');
    on(document, 'keydown', (e) => {
      if (e.key !== 'p' && e.key !== 'P') return;
      if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || e.defaultPrevented) return;
      // Single-key shortcuts off (WCAG 2.1.4): the site's VOTE_SHORTCUTS or the voter's choice (vote.js).
      if (document.body?.dataset.voteShortcuts === 'off') return;
      const t = e.target;
      if (t instanceof Element && t.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])')) return;
      if (!this.battle.root.isConnected) return;
      e.preventDefault();
      this.toggle();
    });
    for (const v of videos) {
      on(v, 'loadedmetadata', () => this.render());
      on(v, 'seeked', () => this.render());
    }
    this.render();
  }

  duration() {
    const d = this.master.duration;
    return Number.isFinite(d) && d > 0 ? d : 0;
  }

  fraction() {
    const max = Number(this.scrub?.max) || 1000;
    const min = Number(this.scrub?.min) || 0;
    return (Number(this.scrub?.value) - min) / (max - min || 1);
  }

  targetFor(v, t) {
    const d = v.duration;
    return Number.isFinite(d) && d > 0 ? t % d : t;
  }

  seekAll(t) {
    if (!Number.isFinite(t)) return;
    for (const v of this.videos) {
      try {
        v.currentTime = this.targetFor(v, t);
      } catch {
        /* not seekable yet */
      }
    }
    this.render(t);
  }

  async playAll() {
    this.playing = true;
    const t = this.master.currentTime;
    for (const v of this.videos) if (v !== this.master && Math.abs(v.currentTime - this.targetFor(v, t)) > 0.05) v.currentTime = this.targetFor(v, t);
    this.updateButton();
    this.loop();
    const results = await Promise.allSettled(this.videos.map((v) => v.play()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed && failed.reason?.name !== 'AbortError') console.warn('arena: video play() failed', failed.reason);
  }

  pauseAll() {
    this.playing = false;
    for (const v of this.videos) v.pause();
    const t = this.master.currentTime;
    for (const v of this.videos) if (v !== this.master) v.currentTime = this.targetFor(v, t);
    cancelAnimationFrame(this.raf);
    this.raf = 0;
    this.updateButton();
    this.render();
  }

  toggle() {
    if (this.playing) this.pauseAll();
    else this.playAll();
  }

  updateButton() {
    if (!this.btn) return;
    this.btn.textContent = this.playing ? 'Pause' : 'Play';
    this.btn.setAttribute('aria-pressed', String(this.playing));
    this.btn.classList.toggle('is-playing', this.playing);
  }

  loop() {
    if (this.raf) return;
    const tick = () => {
      this.raf = 0;
      if (!this.playing || this.signal.aborted) return;
      const t = this.master.currentTime;
      if (!this.master.seeking && !this.scrubbing) {
        for (const v of this.videos) {
          if (v === this.master || v.seeking || v.readyState < HTMLMediaElement.HAVE_METADATA) continue;
          const target = this.targetFor(v, t);
          if (Math.abs(v.currentTime - target) > DRIFT_TOLERANCE_S) v.currentTime = target;
          if (v.paused && !this.master.paused) v.play().catch(() => {});
        }
      }
      this.render(t);
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  render(t = this.master.currentTime) {
    const d = this.duration();
    if (this.scrub && !this.scrubbing && d > 0) {
      const max = Number(this.scrub.max) || 1000;
      const min = Number(this.scrub.min) || 0;
      this.scrub.value = String(Math.round(min + (t / d) * (max - min)));
    }
    if (this.timeEl) this.timeEl.textContent = `${fmtTime(t)} / ${fmtTime(d)}`;
  }

  destroy() {
    this.playing = false;
    cancelAnimationFrame(this.raf);
    for (const v of this.videos) v.pause();
  }
}

// ─── Battle controller ───────────────────────────────────────────────────────

class Battle {
  constructor(root) {
    this.root = root;
    this.abort = new AbortController();
    this.cleanups = [];
    this.link = new OrbitLink();
    this.slots = [...root.querySelectorAll('.slot')].map((fig) => new Slot(this, fig));
    this.videoSync = null;
    this.destroyed = false;
  }

  start() {
    const { root } = this;
    const signal = this.abort.signal;
    root.dataset.initialized = 'true';
    delete root.dataset.ready;
    delete root.dataset.error;
    const grid = root.querySelector('.media-grid');
    if (grid && !grid.dataset.count) grid.dataset.count = String(this.slots.length);

    const loads = this.slots.map(async (slot) => {
      const { fig } = slot;
      delete fig.dataset.loaded;
      delete fig.dataset.error;
      fig.setAttribute('aria-busy', 'true');
      try {
        await slot.load(signal);
        if (signal.aborted) return false;
        fig.dataset.loaded = 'true';
        return true;
      } catch (e) {
        if (signal.aborted || e?.name === 'AbortError') return false;
        const message = errorMessage(e);
        fig.dataset.error = message;
        console.warn(`arena: slot ${slot.name}: ${message}`);
        root.dataset.error = root.dataset.error ? `${root.dataset.error}; ${slot.name}: ${message}` : `${slot.name}: ${message}`;
        root.dispatchEvent(new CustomEvent('arena:error', { bubbles: true, detail: { slot: slot.name, message } }));
        return false;
      } finally {
        fig.removeAttribute('aria-busy');
      }
    });

    // Video controls can be wired as soon as the elements exist (created synchronously above).
    const videos = this.slots.filter((s) => s.kind === 'video').map((s) => s.media).filter(Boolean);
    if (videos.length) this.videoSync = new VideoSync(this, videos, root.querySelector('.video-controls'), signal);

    this.ready = Promise.all(loads).then((oks) => {
      if (signal.aborted) return false;
      const all = oks.length > 0 && oks.every(Boolean);
      if (all) {
        root.dataset.ready = 'true';
        root.dispatchEvent(new CustomEvent('arena:ready', { bubbles: true }));
      }
      return all;
    });
    return this;
  }

  orbits() {
    const out = {};
    for (const s of this.slots) if (s.orbitMember) out[s.name] = s.orbitMember.read();
    return out;
  }

  playAll() {
    return this.videoSync?.playAll();
  }

  pauseAll() {
    this.videoSync?.pauseAll();
  }

  seekAll(t) {
    this.videoSync?.seekAll(t);
  }

  async destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    this.abort.abort();
    this.videoSync?.destroy();
    for (const s of this.slots) if (s.orbitMember) this.link.leave(s.orbitMember);
    const cleanups = this.cleanups.splice(0);
    await Promise.allSettled(cleanups.map((fn) => fn()));
  }
}

/** Initialise one .battle element (idempotent). Returns its controller. */
export function initBattle(root) {
  if (!(root instanceof Element)) throw new TypeError('initBattle(root): root must be an element');
  const existing = controllers.get(root);
  if (existing && !existing.destroyed) return existing;
  const battle = new Battle(root);
  controllers.set(root, battle);
  live.add(battle);
  battle.start();
  return battle;
}

/** Tear down a battle: listeners, video loop, splat viewers + WebGL contexts. */
export function destroyBattle(root) {
  const battle = controllers.get(root);
  if (!battle) return Promise.resolve();
  controllers.delete(root);
  live.delete(battle);
  delete root.dataset.initialized;
  return battle.destroy();
}

/** The controller of an initialised .battle, or null. */
export function getBattle(root) {
  return controllers.get(root) || null;
}

function initAll(scope) {
  if (!scope || !(scope instanceof Element || scope instanceof Document)) return;
  if (scope instanceof Element && scope.matches('.battle')) initBattle(scope);
  for (const el of scope.querySelectorAll('.battle')) initBattle(el);
}

// Tear down battles removed from the document (htmx swaps, manual removal).
const sweeper = new MutationObserver((records) => {
  if (!live.size || !records.some((r) => [...r.removedNodes].some((n) => n.nodeType === Node.ELEMENT_NODE))) return;
  for (const battle of [...live]) if (!battle.root.isConnected) destroyBattle(battle.root);
});

function boot() {
  sweeper.observe(document.documentElement, { childList: true, subtree: true });
  initAll(document);
  // htmx 2 fires htmx:load on every element it swaps in (and on body at start).
  document.body.addEventListener('htmx:load', (e) => initAll(e.target));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot, { once: true });
else boot();
