// The chat page (/chat/, templates/agent_api/chat.html): LangGraph's useStream hook against this
// server's LangGraph-compatible API, with the user's session and CSRF token (no API token in
// the browser). Everything a graph or a person wrote is rendered as text by React, never as HTML.
// Rebuild static/chat/chat.js after a change: `npm run build` in clients/js.
import { useEffect, useMemo, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { Client } from "@langchain/langgraph-sdk";
import { useStream } from "@langchain/langgraph-sdk/react";
import { actionsOf, argText, contentText, resumeFor } from "./interrupts.js";

function makeClient(root) {
  return new Client({
    apiUrl: new URL(root.dataset.apiUrl, window.location.origin).href.replace(/\/$/, ""),
    apiKey: null, // the session authenticates; never a key from the environment
    defaultHeaders: { "X-CSRFToken": root.dataset.csrfToken },
    callerOptions: { maxRetries: 0 },
  });
}

function errorText(error) {
  if (error == null) return "";
  const text = error.message ?? String(error);
  // The SDK puts the server's JSON after the status; ours says {"message": ...}.
  const json = text.match(/\{.*\}$/s);
  try {
    return json ? JSON.parse(json[0]).message ?? text : text;
  } catch {
    return text;
  }
}

function Bubble({ message, streaming }) {
  const human = message.type === "human";
  const kind = human ? "human" : message.type === "tool" ? "tool" : "ai";
  return (
    <li className={`bubble bubble-${kind}`} data-message-type={message.type} aria-busy={streaming || undefined}>
      <div className="bubble-head">
        <span className="bubble-role">{human ? "You" : kind === "tool" ? `Tool ${message.name ?? ""}` : "Agent"}</span>
        {streaming && <span className="bubble-meta chat-typing">writing…</span>}
      </div>
      <div className="bubble-text">{contentText(message.content)}</div>
    </li>
  );
}

function InterruptCard({ value, canDecide, busy, onAnswer }) {
  const actions = actionsOf(value);
  const canReject = actions.every((action) => action.canReject);
  return (
    <section className="card chat-interrupt" aria-labelledby="chat-interrupt-title">
      <div className="card-head">
        <span className="badge badge-interrupted"><span className="badge-dot" />waiting for review</span>
        <h2 id="chat-interrupt-title">The agent asks before it goes on</h2>
      </div>
      {actions.map((action, index) => (
        <div className="chat-action" key={index}>
          {action.name && <p><strong className="mono">{action.name}</strong></p>}
          {action.description && <p>{action.description}</p>}
          {Object.keys(action.args).length > 0 && (
            <table className="kv-table">
              <tbody>
                {Object.entries(action.args).map(([key, arg]) => (
                  <tr key={key}><th scope="row">{key}</th><td className="long-text">{argText(arg)}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      ))}
      {canDecide ? (
        <div className="actions chat-decide">
          <button type="button" className="btn btn-primary" disabled={busy} onClick={() => onAnswer(true)}>Approve</button>
          {canReject && (
            <button type="button" className="btn btn-danger" disabled={busy} onClick={() => onAnswer(false)}>Reject</button>
          )}
        </div>
      ) : (
        <p className="muted">Only reviewers and admins answer; it is in the approvals inbox for them.</p>
      )}
    </section>
  );
}

function Composer({ disabled, why, onSend }) {
  const [text, setText] = useState("");
  const send = (event) => {
    event.preventDefault();
    if (!text.trim() || disabled) return;
    onSend(text.trim());
    setText("");
  };
  return (
    <form className="chat-composer" onSubmit={send}>
      <label htmlFor="chat-input" className="sr-only">Message</label>
      <textarea id="chat-input" rows={2} value={text} placeholder={why || "Write a message…"} disabled={disabled}
        onChange={(event) => setText(event.target.value)}
        onKeyDown={(event) => { if (event.key === "Enter" && !event.shiftKey) send(event); }} />
      <button type="submit" className="btn btn-primary" disabled={disabled || !text.trim()}>Send</button>
    </form>
  );
}

// A closed tab or a dropped connection never stops the run (useStream would cancel it): the
// stream is resumable and the run goes on, in the executions list and the inbox.
const RESUMABLE = { streamResumable: true, onDisconnect: "continue" };

function Conversation({ client, assistantId, threadId, setThreadId, perms, executionsUrl }) {
  const [runId, setRunId] = useState(null);
  const stream = useStream({
    client,
    assistantId,
    threadId,
    onThreadId: setThreadId,
    messagesKey: "messages",
    onCreated: (run) => setRunId(run.run_id),
  });
  const messages = stream.messages;
  const interrupt = Array.isArray(stream.interrupt) ? stream.interrupt[0] : stream.interrupt;
  const waiting = interrupt != null && interrupt.value !== undefined && !stream.isLoading;
  const last = messages[messages.length - 1];
  const end = useRef(null);
  useEffect(() => { // a reloaded conversation links its latest execution too
    if (threadId && !runId) client.runs.list(threadId, { limit: 1 }).then(([run]) => run && setRunId(run.run_id), () => {});
  }, [client, threadId, runId]);
  useEffect(() => {
    end.current?.scrollIntoView({ block: "nearest" }); // returns a promise in new browsers: never the effect's cleanup
  }, [messages.length, waiting]);

  const send = (text) => {
    const message = { type: "human", content: text };
    stream.submit({ messages: [message] }, {
      ...RESUMABLE,
      optimisticValues: (prev) => ({ ...prev, messages: [...(prev.messages ?? []), message] }),
    });
  };
  const answer = (approve) => stream.submit(undefined, { ...RESUMABLE, command: { resume: resumeFor(interrupt.value, approve) } });

  const why = !perms.canStart ? "Only operators and admins start conversations." : waiting ? "Answer the question above first." : "";
  return (
    <>
      <div className="card chat-log">
        {messages.length === 0 ? (
          <p className="muted chat-empty">No messages yet. Write one below to start an execution of this graph.</p>
        ) : (
          <ol className="chat" aria-live="polite" aria-busy={stream.isLoading}>
            {messages.map((message, index) => (
              <Bubble key={message.id ?? index} message={message}
                streaming={stream.isLoading && message === last && message.type === "ai"} />
            ))}
          </ol>
        )}
        {stream.isLoading && last?.type !== "ai" && <p className="muted chat-status" role="status">Working…</p>}
        <div ref={end} />
      </div>
      {stream.error != null && (
        <div className="msg msg-error" role="alert">{errorText(stream.error)}</div>
      )}
      {waiting && (
        <InterruptCard value={interrupt.value} canDecide={perms.canDecide} busy={stream.isLoading} onAnswer={answer} />
      )}
      <Composer disabled={!perms.canStart || waiting || stream.isLoading} why={why} onSend={send} />
      {runId && (
        <p className="small muted chat-run">
          This conversation runs as execution <a className="mono" href={`${executionsUrl}${runId}/`}>{runId.slice(0, 8)}</a>:
          its trace, tokens and approvals are there.
        </p>
      )}
    </>
  );
}

const linked = new URLSearchParams(window.location.search);

function App({ root }) {
  const client = useMemo(() => makeClient(root), [root]);
  const perms = { canStart: root.dataset.canStart === "true", canDecide: root.dataset.canDecide === "true" };
  const [assistants, setAssistants] = useState(null);
  const [failed, setFailed] = useState("");
  // The graph and the thread are in the address (?graph=&thread=): a reload shows the same conversation.
  const [assistantId, setAssistantId] = useState(() => linked.get("graph") ?? "");
  const [threadId, setThreadId] = useState(() => linked.get("thread"));
  const [conversation, setConversation] = useState(0);

  useEffect(() => {
    const params = new URLSearchParams();
    if (assistantId) params.set("graph", assistantId);
    if (threadId) params.set("thread", threadId);
    window.history.replaceState(null, "", `${window.location.pathname}?${params}`);
  }, [assistantId, threadId]);

  useEffect(() => {
    client.assistants.search({ limit: 100, sortBy: "name", sortOrder: "asc" }).then((found) => {
      setAssistants(found);
      const known = (id) => found.find((a) => a.assistant_id === id || a.graph_id === id)?.assistant_id;
      setAssistantId((current) => known(current) || found[0]?.assistant_id || "");
    }, (error) => setFailed(errorText(error)));
  }, [client]);

  const restart = () => { setThreadId(null); setConversation((n) => n + 1); };
  const pick = (event) => { setAssistantId(event.target.value); restart(); };

  if (failed) return <div className="msg msg-error" role="alert">The graphs could not be listed: {failed}</div>;
  if (assistants == null) return <p className="muted" role="status">Loading the graphs…</p>;
  if (assistants.length === 0) return <div className="empty"><strong>No graphs are registered.</strong><p>Add one to LOOPGATE_GRAPHS.</p></div>;
  return (
    <div className="chat-page">
      <div className="chat-toolbar">
        <div className="field-inline">
          <label htmlFor="chat-assistant">Graph</label>
          <select id="chat-assistant" value={assistantId} onChange={pick}>
            {assistants.map((a) => <option key={a.assistant_id} value={a.assistant_id}>{a.name || a.graph_id}</option>)}
          </select>
        </div>
        <button type="button" className="btn" onClick={restart}>New conversation</button>
        {threadId && <span className="small muted">thread <code className="mono">{threadId.slice(0, 8)}</code></span>}
      </div>
      <Conversation key={`${assistantId}:${conversation}`} client={client} assistantId={assistantId} threadId={threadId}
        setThreadId={setThreadId} perms={perms} executionsUrl={root.dataset.executionsUrl} />
    </div>
  );
}

const root = document.getElementById("chat-root");
if (root) createRoot(root).render(<App root={root} />);
