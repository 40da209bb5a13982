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
// which may push it below the fold), once per call: looked at when the page has been still for a moment
// (its content laid out), so that a person who scrolls away is not pulled back.
let revealedCall = "";
let revealTimer;
const revealApproval = () => {
  const panel = document.querySelector("#approval-panel");
  const call = panel && panel.offsetParent !== null ? panel.querySelector("#approval-call").textContent : "";
  if (call && call !== revealedCall) {
    document.querySelector("#approval-deny")?.scrollIntoView({ block: "nearest" });
  }
  revealedCall = call;
};
new MutationObserver(() => {
  clearTimeout(revealTimer);
  revealTimer = setTimeout(revealApproval, 200);
}).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
