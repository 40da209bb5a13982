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
