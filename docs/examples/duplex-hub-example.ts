// A typed use of duplex-hub.js (checked by the tests with tsc --strict against duplex-hub.d.ts).
// In a page: <script type="module"> import { DuplexHub } from "http://127.0.0.1:8080/duplex-hub.js"; … </script>
import { DuplexHub, HubError, type HubMessage } from "../../src/Duplex.Cli/wwwroot/duplex-hub.js";

interface Chat { name: string; text: string }

const hub = new DuplexHub("ws://127.0.0.1:8080/hub", { maxOutbox: 50 });

hub.addEventListener("state", e => console.log(`hub: ${e.detail.state}`, e.detail.code ?? ""));
hub.addEventListener("message", e => {
  const message = e.detail as HubMessage<Chat>;
  console.log(`#${message.offset} ${message.data.name}: ${message.data.text}`);
});
hub.addEventListener("joined", e => console.log(`${e.detail.client} joined ${e.detail.channel}`));
hub.addEventListener("gap", e => console.log(`${e.detail.channel}: messages may be missing${e.detail.reset ? " (new stream)" : ""}`));

export async function chat(name: string, text: string): Promise<number> {
  await hub.join("lobby", { name });
  const members = await hub.presence<{ name: string }>("lobby");
  console.log(members.map(m => m.info?.name ?? m.client).join(", "));
  const page = await hub.history<Chat>("lobby", { limit: 20 });
  for (const old of page.messages) console.log(old.data.text);
  try {
    const { offset } = await hub.publish("lobby", { name, text } satisfies Chat);
    return offset;
  } catch (e) {
    if (e instanceof HubError && e.code === "outbox_full") return -1;
    throw e;
  }
}
