// What a graph's interrupt asks, and the resume value that answers it, for the payload
// formats Loopgate understands (README, "Approvals: what a graph gets back"). Pure functions.

const isInboxItem = (item) => item != null && typeof item === "object" && typeof item.action_request === "object";

// The interrupt's format: "agent_inbox", "hitl" (LangChain's HumanInTheLoopMiddleware),
// "tool_approval" (its per-call mode) or "plain" (any other value).
export function formatOf(value) {
  if (Array.isArray(value) ? value.length > 0 && value.every(isInboxItem) : isInboxItem(value)) return "agent_inbox";
  if (value != null && typeof value === "object" && Array.isArray(value.action_requests)) return "hitl";
  if (value != null && typeof value === "object" && value.type === "tool_approval") return "tool_approval";
  return "plain";
}

// The actions the interrupt asks about: [{ name, description, args, canReject }].
export function actionsOf(value) {
  const format = formatOf(value);
  if (format === "agent_inbox") {
    return (Array.isArray(value) ? value : [value]).map((item) => ({
      name: String(item.action_request.action ?? "action"),
      description: String(item.description ?? ""),
      args: item.action_request.args ?? {},
      canReject: Boolean(item.config?.allow_ignore),
    }));
  }
  if (format === "hitl") {
    return value.action_requests.map((request, index) => ({
      name: String(request.name ?? "action"),
      description: String(request.description ?? ""),
      args: request.args ?? {},
      canReject: (value.review_configs?.[index]?.allowed_decisions ?? ["reject"]).includes("reject"),
    }));
  }
  if (value == null || typeof value !== "object") {
    return [{ name: "", description: value == null ? "" : String(value), args: {}, canReject: true }];
  }
  const { action, name, description, allowed_decisions: allowed, args, ...rest } = value;
  return [{
    name: String(action ?? name ?? ""),
    description: String(description ?? ""),
    args: args ?? rest,
    canReject: !Array.isArray(allowed) || allowed.includes("reject"),
  }];
}

const REJECTED = "Rejected in the chat.";

// The command.resume value for Approve (approve = true) or Reject, in the interrupt's own format.
export function resumeFor(value, approve) {
  const format = formatOf(value);
  if (format === "agent_inbox") {
    return actionsOf(value).map(() => ({ type: approve ? "accept" : "ignore", args: null }));
  }
  const decision = approve ? { type: "approve" } : { type: "reject", message: REJECTED };
  if (format === "hitl") return { decisions: value.action_requests.map(() => decision) };
  return decision;
}

// An argument's value as text: strings as they are, anything else as JSON.
export function argText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

// A message's content as text: a string, or the text parts of a list of content blocks.
export function contentText(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) => (typeof part === "string" ? part : part?.type === "text" ? part.text : "")).join("");
}
