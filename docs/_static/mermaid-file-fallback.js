// Opened from a file:// path, the browser refuses ES modules, so sphinxcontrib-mermaid's loader
// (an `import` of mermaid.esm.min.mjs) cannot run. There, load mermaid's classic build, which
// the site also serves, and draw the diagrams with it. Over http(s) this script does nothing.
if (window.location.protocol === "file:") {
  document.addEventListener("DOMContentLoaded", () => {
    if (!document.querySelector(".mermaid")) return;
    const script = document.createElement("script");
    script.src = (document.documentElement.dataset.content_root || "") + "_static/mermaid/mermaid.min.js";
    script.onload = () => {
      window.mermaid.initialize({ startOnLoad: false });
      window.mermaid.run({ querySelector: ".mermaid" });
    };
    document.head.appendChild(script);
  });
}
