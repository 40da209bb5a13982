// Enter (or the send button) in an empty message box does nothing: no bubble, no turn, no saved chat.
// Checked in the page, before Gradio sees the event; the chat function ignores blank input too.
const ignoreBlank = (event) => {
  const box = document.querySelector("#chat-input textarea");
  if (!box || box.value.trim()) return;
  const enter = event.type === "keydown" && event.key === "Enter" && !event.shiftKey && event.target === box;
  const send = event.type === "click" && event.target.closest("#chat-input .submit-button");
  if (enter || send) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
};
document.addEventListener("keydown", ignoreBlank, true);
document.addEventListener("click", ignoreBlank, true);

// A call waiting for approval brings its Approve / Deny panel into view (it sits under the live turn,
// which may push it below the fold). Looked at a moment after the page changes (at most five times a
// second), while the panel's content is laid out: during the first 1.5 s of each call only, so that a
// person who scrolls away is not pulled back.
const REVEAL_MS = 1500;
let revealed = { call: "", at: 0 };
let revealTimer;
const revealApproval = () => {
  const panel = document.querySelector("#approval-panel");
  const call = panel && panel.offsetParent !== null ? panel.querySelector("#approval-call").textContent : "";
  if (call !== revealed.call) revealed = { call, at: performance.now() };
  if (call && performance.now() - revealed.at < REVEAL_MS) {
    document.querySelector("#approval-deny")?.scrollIntoView({ block: "nearest" });
  }
};
new MutationObserver(() => {
  revealTimer ??= setTimeout(() => {
    revealTimer = undefined;
    revealApproval();
  }, 200);
}).observe(document.documentElement, { childList: true, subtree: true, characterData: true });

// Chat text reaches the page as HTML rendered on the server (ui/render.py), and Gradio's copy buttons copy a
// message's value, that HTML. A moment after Gradio has copied, the text as the page shows it replaces it.
const copyAsShown = (event) => {
  const button = event.target.closest("#agent-chat button");
  const label = button?.getAttribute("aria-label");
  if (label !== "Copy message" && label !== "Copy conversation") return;
  const rows =
    label === "Copy message"
      ? [button.closest(".message-buttons")?.previousElementSibling]
      : [...document.querySelectorAll("#agent-chat .message-row")];
  const text = rows
    .filter(Boolean)
    .map((row) => row.innerText.trim())
    .join("\n\n");
  setTimeout(() => navigator.clipboard?.writeText(text).catch(() => {}), 100);
};
document.addEventListener("click", copyAsShown, true);
