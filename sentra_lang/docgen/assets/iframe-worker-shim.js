/* Offline search for a site opened from disk.
 *
 * Browsers refuse `new Worker("file:///...")`, so on file: URLs the search worker runs in a
 * hidden iframe of the same origin instead, with `postMessage` wired both ways. Served over
 * HTTP the real Worker is used. (The file name contains "iframe-worker" so that Material's
 * offline plugin uses this local shim instead of fetching one from a CDN.)
 */
(() => {
  if (location.protocol !== "file:") {
    return;
  }
  class IFrameWorker extends EventTarget {
    constructor(url) {
      super();
      this.onmessage = null;
      this.ready = false;
      this.pending = [];
      this.frame = document.createElement("iframe");
      this.frame.hidden = true;
      (document.body || document.documentElement).appendChild(this.frame);
      const scope = this.frame.contentWindow;
      scope.postMessage = (data) => this.receive(data);
      scope.importScripts = () => {
        throw new Error("importScripts is not available in the offline search shim");
      };
      const script = scope.document.createElement("script");
      script.src = new URL(url, location.href).href;
      script.onload = () => {
        this.ready = true;
        this.pending.splice(0).forEach((data) => this.postMessage(data));
      };
      scope.document.head.appendChild(script);
      this.scope = scope;
    }
    receive(data) {
      const event = new MessageEvent("message", { data });
      this.dispatchEvent(event);
      if (typeof this.onmessage === "function") {
        this.onmessage(event);
      }
    }
    postMessage(data) {
      if (!this.ready) {
        this.pending.push(data);
        return;
      }
      this.scope.dispatchEvent(new this.scope.MessageEvent("message", { data }));
    }
    terminate() {
      this.frame.remove();
    }
  }
  window.Worker = IFrameWorker;
})();
