// LangGraph's JS SDK against Loopgate, as a Node.js client would use it:
//   node journey.mjs <langgraph url> <api token>
// start a run on a thread and stream it (values, updates, messages) -> the interrupt (and the
// interrupted threads, as Agent Inbox lists them) -> resume it with a Command -> read the history. Prints one JSON object of what
// the client saw; tests/agent_api/test_js_journey.py asserts on it.
import { Client } from "@langchain/langgraph-sdk";

const GRAPH = "lg_note";
const MODES = ["values", "updates", "messages"];

// What one streamed run showed: the events in order, each streamed message's growing
// text, the nodes' updates, the last values and the interrupt.
async function watch(stream) {
  const seen = { events: [], metadata: null, partials: {}, updates: [], values: null, interrupts: [] };
  for await (const { event, data } of stream) {
    seen.events.push(event);
    if (event === "metadata") seen.metadata = data;
    if (event === "messages/partial") {
      for (const message of data) (seen.partials[message.id] ??= []).push(message.content);
    }
    if (event === "updates") {
      for (const [node, update] of Object.entries(data)) {
        if (node === "__interrupt__") seen.interrupts.push(...update.map((i) => i.value));
        else seen.updates.push(node);
      }
    }
    if (event === "values") seen.values = data;
    if (event === "error") throw new Error(`the stream sent an error: ${JSON.stringify(data)}`);
  }
  return seen;
}

const texts = (values) => (values?.messages ?? []).map((m) => `${m.type}: ${m.content}`);

async function main(url, apiKey) {
  const client = new Client({ apiUrl: url, apiKey });
  const [assistant] = await client.assistants.search({ graphId: GRAPH });
  const thread = await client.threads.create({ metadata: { door: "js" } });
  const threadId = thread.thread_id;

  const first = await watch(client.runs.stream(threadId, GRAPH, {
    input: { messages: [{ type: "human", content: "the launch" }] },
    streamMode: MODES,
  }));
  const stopped = await client.threads.get(threadId);
  const waiting = await client.threads.getState(threadId);
  // What Agent Inbox reads: the interrupted threads, each with its interrupts.
  const inbox = await client.threads.search({ status: "interrupted", metadata: { door: "js" } });

  const resumed = await watch(client.runs.stream(threadId, GRAPH, {
    command: { resume: [{ type: "accept", args: null }] },
    streamMode: MODES,
  }));
  const done = await client.threads.get(threadId);
  const history = await client.threads.getHistory(threadId);
  const runs = await client.runs.list(threadId);

  return {
    assistant: { id: assistant.assistant_id, graph_id: assistant.graph_id },
    thread_id: threadId,
    first: { ...first, values: texts(first.values) },
    thread_stopped: { status: stopped.status, next: waiting.next },
    inbox: inbox.map((t) => ({ this_thread: t.thread_id === threadId, asks: Object.values(t.interrupts).flat().map((i) => i.value) })),
    resumed: { ...resumed, values: texts(resumed.values) },
    thread_done: { status: done.status, values: texts(done.values) },
    history: history.map((s) => ({ next: s.next, step: s.metadata?.step, source: s.metadata?.source })),
    runs: runs.map((r) => ({ run_id: r.run_id, status: r.status })),
  };
}

const [url, apiKey] = process.argv.slice(2);
if (!url || !apiKey) {
  console.error("usage: node journey.mjs <langgraph url> <api token>");
  process.exit(2);
}
try {
  console.log(JSON.stringify(await main(url, apiKey)));
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exit(1);
}
