/**
 * The chat page, one self-contained HTML document: instruction and input, generation settings,
 * a base/tuned switch (alpaca-lora's generate.py Gradio UI), and the response as it streams in.
 */
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>LoraForge chat</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 12px 24px; font-weight: 600; }
  main { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(320px, 1fr); gap: 24px; padding: 24px; }
  section { background: #fff; border-radius: 8px; padding: 16px 20px; box-shadow: 0 1px 3px #0002; }
  label { display: block; margin: 10px 0 4px; font-weight: 600; font-size: 13px; }
  textarea { width: 100%; box-sizing: border-box; font: inherit; padding: 6px; }
  .settings { display: grid; grid-template-columns: repeat(3, 1fr); gap: 0 12px; }
  .settings input { width: 100%; box-sizing: border-box; }
  .variants label { display: inline; font-weight: normal; margin-right: 16px; }
  button { margin-top: 14px; padding: 8px 20px; font: inherit; background: #3451d1; color: #fff; border: 0; border-radius: 6px; cursor: pointer; }
  button:disabled { background: #8a96c9; }
  #output { white-space: pre-wrap; min-height: 12em; font-family: ui-monospace, monospace; background: #fafafa; border: 1px solid #ddd; border-radius: 6px; padding: 10px; }
  #status { color: #566; font-size: 13px; margin-top: 8px; }
</style>
</head>
<body>
<header>LoraForge chat · ONNX Runtime on this machine</header>
<main>
  <section>
    <form id="form">
      <label for="instruction">Instruction</label>
      <textarea id="instruction" name="instruction" rows="3" required placeholder="Tell me about alpacas."></textarea>
      <label for="input">Input</label>
      <textarea id="input" name="input" rows="2" placeholder="(optional)"></textarea>
      <label>Model</label>
      <div class="variants" id="variants"></div>
      <div class="settings">
        <div><label for="temperature">Temperature</label><input id="temperature" name="temperature" type="number" min="0" max="2" step="0.05" value="0.1"></div>
        <div><label for="topP">Top p</label><input id="topP" name="topP" type="number" min="0.01" max="1" step="0.01" value="0.75"></div>
        <div><label for="topK">Top k</label><input id="topK" name="topK" type="number" min="0" max="1000" step="1" value="40"></div>
        <div><label for="repetitionPenalty">Repetition penalty</label><input id="repetitionPenalty" name="repetitionPenalty" type="number" min="0.5" max="3" step="0.05" value="1"></div>
        <div><label for="maxNewTokens">Max new tokens</label><input id="maxNewTokens" name="maxNewTokens" type="number" min="1" max="2048" step="1" value="128"></div>
        <div><label for="seed">Seed</label><input id="seed" name="seed" type="number" min="0" step="1" value="0"></div>
      </div>
      <button id="generate" type="submit">Generate</button>
      <button id="stop" type="button" disabled>Stop</button>
    </form>
  </section>
  <section>
    <label>Response</label>
    <div id="output" aria-live="polite"></div>
    <div id="status">idle</div>
  </section>
</main>
<script>
const $ = (id) => document.getElementById(id);
let source = null;
fetch("api/info").then((r) => r.json()).then((info) => {
  $("variants").innerHTML = info.variants.map((v, i) =>
    '<label><input type="radio" name="variant" value="' + v.name + '"' +
    (i === info.variants.length - 1 ? " checked" : "") + '> ' + v.label + '</label>').join("");
});
function finish(text) {
  if (source) source.close();
  source = null;
  $("status").textContent = text;
  $("generate").disabled = false;
  $("stop").disabled = true;
}
$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (source) source.close();
  const params = new URLSearchParams(new FormData($("form")));
  $("output").textContent = "";
  $("status").textContent = "generating…";
  $("generate").disabled = true;
  $("stop").disabled = false;
  let n = 0;
  const started = performance.now();
  source = new EventSource("api/generate?" + params);
  source.addEventListener("token", (ev) => {
    $("output").textContent += JSON.parse(ev.data).text;
    n++;
    $("status").textContent = "generating… " + n + " tokens";
  });
  source.addEventListener("done", (ev) => {
    const d = JSON.parse(ev.data);
    const s = (performance.now() - started) / 1000;
    finish("done: " + d.tokens + " tokens (" + d.stop.replace(/_/g, " ") + "), " + (d.tokens / s).toFixed(1) + " tokens/s");
  });
  source.addEventListener("failed", (ev) => finish("failed: " + JSON.parse(ev.data).message));
  source.onerror = () => { if (source) finish("connection lost"); };
});
$("stop").addEventListener("click", () => finish("stopped"));
</script>
</body>
</html>
`;
