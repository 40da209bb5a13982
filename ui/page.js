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
// which may push it below the fold); the panel's call text is filled by the chat as the call waits.
new MutationObserver(() => {
  const call = document.querySelector("#approval-call");
  if (call && call.textContent.trim() && !call.dataset.shown) {
    call.dataset.shown = "1";
    document.querySelector("#approval-panel")?.scrollIntoView({ block: "end", behavior: "smooth" });
  } else if (call && !call.textContent.trim()) {
    delete call.dataset.shown;
  }
}).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
