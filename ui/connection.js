// A server process that dies mid-answer (killed, crashed) cannot say anything. Gradio then shows
// "Connection to the server was lost" and the page is dead: it sends no more events, and its way back
// (reloading once its `app_id` route answers) is closed by the guard's allow-list. So the page keeps
// the unanswered question, waits until the server answers `/healthz` again (behind nginx: any ready
// worker), reloads itself, reopens the conversation it showed (the saved one whose id the server
// keeps in the hidden #open-conversation box; none if the cut turn was its first, which was never
// saved), and then shows one line with the question back in the message box.
// Gradio's own text is the signal: tests/ui/test_lifecycle.py checks the installed Gradio still shows it.
const LOST_TEXT = "Connection to the server was lost";
const LOST_KEY = "agent-connection-lost";
const LOST_LINE = "⚠️ The connection to the server was lost; your question is back in the box — send it again.";
const LOST_LINE_IDLE = "⚠️ The connection to the server was lost; the page was loaded again.";
const HEALTH_URL = new URL("healthz", document.baseURI);
let lastSent = "";
let recovering = false;

const normalized = (text) => text.replace(/\s+/g, " ").trim();

// What the box held when a question was sent (Enter or the send button), before Gradio empties it.
const rememberSent = (event) => {
  const box = document.querySelector("#chat-input textarea");
  if (!box || event.target !== box && !event.target.closest?.("#chat-input .submit-button")) return;
  if (event.type === "keydown" && (event.key !== "Enter" || event.shiftKey)) return;
  if (box.value.trim()) lastSent = box.value;
  document.querySelector("#connection-lost")?.remove();
};
document.addEventListener("keydown", rememberSent, true);
document.addEventListener("click", rememberSent, true);

// The question of the turn the lost connection cut: the last user message, if no finished answer
// (one with its footer) came after it. The text as typed when it is the one sent from the box.
const unansweredQuestion = () => {
  const messages = [...document.querySelectorAll("#agent-chat .message-row")];
  const lastUser = messages.findLastIndex((row) => row.classList.contains("user-row"));
  if (lastUser < 0) return "";
  const answered = messages.slice(lastUser + 1).some((row) => row.innerText.includes("📊"));
  if (answered) return "";
  const shown = messages[lastUser].innerText;
  return normalized(shown) === normalized(lastSent) ? lastSent : normalized(shown);
};

// The saved conversation the page shows (set by the server as the chat changes; empty: none yet).
const openConversationBox = () => document.querySelector("#open-conversation textarea");

const serverAnswers = async () => {
  try {
    return (await fetch(HEALTH_URL, { cache: "no-store" })).ok;
  } catch {
    return false;
  }
};

const recover = async () => {
  recovering = true;
  const conversation = openConversationBox()?.value ?? "";
  sessionStorage.setItem(LOST_KEY, JSON.stringify({ question: unansweredQuestion(), conversation }));
  while (!(await serverAnswers())) await new Promise((resolve) => setTimeout(resolve, 1000));
  location.reload();
};

const lostConnection = () =>
  [...document.querySelectorAll(".toast-body, [role=alert]")].some((el) => el.textContent.includes(LOST_TEXT));

new MutationObserver(() => {
  if (!recovering && lostConnection()) recover();
}).observe(document.documentElement, { childList: true, subtree: true });

// The page's events reach the server once its first load event has filled the saved list (a click
// before that is lost); the saved conversation is one of its rows. Then its id goes back in the box
// and the hidden button opens it, once Gradio has taken the box's new value.
const reopenWhenListed = (conversation) => {
  const reopen = () => {
    const box = document.querySelector("#reopen-conversation textarea");
    if (!box || !document.querySelector("#saved-list tbody tr")) return false;
    box.value = conversation;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => document.querySelector("#reopen-conversation-button")?.click());
    return true;
  };
  if (reopen()) return;
  const waitForList = new MutationObserver(() => reopen() && waitForList.disconnect());
  waitForList.observe(document.documentElement, { childList: true, subtree: true });
};

// After the reload: the conversation opened again, the line above the message box, the question back in it.
const restore = () => {
  const saved = sessionStorage.getItem(LOST_KEY);
  const input = document.querySelector("#chat-input");
  const box = input?.querySelector("textarea");
  if (!saved || !box) return false;
  sessionStorage.removeItem(LOST_KEY);
  const { question, conversation } = JSON.parse(saved);
  if (conversation) reopenWhenListed(conversation);
  const line = document.createElement("div");
  line.id = "connection-lost";
  line.setAttribute("role", "status");
  line.textContent = question ? LOST_LINE : LOST_LINE_IDLE;
  input.before(line);
  if (question) {
    box.value = question;
    box.dispatchEvent(new Event("input", { bubbles: true })); // Gradio's textbox reads its value from input events
  }
  return true;
};
if (sessionStorage.getItem(LOST_KEY)) {
  const waitForBox = new MutationObserver(() => restore() && waitForBox.disconnect());
  waitForBox.observe(document.documentElement, { childList: true, subtree: true });
}
