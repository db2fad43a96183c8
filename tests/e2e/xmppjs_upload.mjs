// Upload one file with @xmpp/client (xmpp.js, npm), which has no upload helper of its own, the
// way a web or Node client built on it does: disco#items of the domain, disco#info of each item
// (the upload service is the one with feature urn:xmpp:http:upload:0; --service says which JID it
// must be), the XEP-0363 slot IQ, a PUT with fetch() carrying the slot headers, then a message to
// --to with the GET URL (body and XEP-0066 <x xmlns='jabber:x:oob'>).
//
// Usage: NODE_PATH=… NODE_EXTRA_CA_CERTS=cert.pem node xmppjs_upload.mjs --jid alice@localhost
//          --password PW --port PORT --to bob@localhost --service upload.localhost FILE
// The @xmpp/client package is loaded from --modules (a node_modules folder). Prints `GET <url>`.
import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";

const { values: opt, positionals } = parseArgs({
  options: {
    jid: { type: "string" },
    password: { type: "string" },
    port: { type: "string" },
    to: { type: "string" },
    service: { type: "string" },
    modules: { type: "string" },
  },
  allowPositionals: true,
});
const file = positionals[0];
const entry = join(opt.modules, "@xmpp", "client", "index.js");
const { client, xml } = await import(pathToFileURL(entry).href);

const [username, domain] = opt.jid.split("@");
const xmpp = client({
  service: `xmpp://127.0.0.1:${opt.port}`,
  domain,
  username,
  password: opt.password,
  resource: "xmppjs-e2e",
});
xmpp.on("error", (err) => {
  console.error(`xmpp.js error: ${err.message}`);
});
// A single attempt: no reconnecting when something goes wrong.
xmpp.reconnect.stop();

const types = { ".txt": "text/plain", ".png": "image/png", ".jpg": "image/jpeg", ".bin": "application/octet-stream" };
const ext = file.slice(file.lastIndexOf("."));
const contentType = types[ext] ?? "application/octet-stream";

async function run() {
  await xmpp.start();
  const { iqCaller } = xmpp;
  const items = await iqCaller.request(
    xml("iq", { type: "get", to: domain }, xml("query", { xmlns: "http://jabber.org/protocol/disco#items" })),
  );
  const jids = items.getChild("query").getChildren("item").map((i) => i.attrs.jid);
  if (!jids.includes(opt.service)) throw new Error(`${opt.service} not in disco#items: ${jids}`);
  const services = [];
  for (const item of new Set(jids)) {
    let info;
    try {
      info = await iqCaller.request(
        xml("iq", { type: "get", to: item }, xml("query", { xmlns: "http://jabber.org/protocol/disco#info" })),
      );
    } catch {
      continue;
    }
    const features = info.getChild("query").getChildren("feature").map((f) => f.attrs.var);
    if (features.includes("urn:xmpp:http:upload:0")) services.push(item);
  }
  if (services.length !== 1 || services[0] !== opt.service) {
    throw new Error(`upload services found: ${services}, expected only ${opt.service}`);
  }
  const size = (await stat(file)).size;
  const reply = await iqCaller.request(
    xml(
      "iq",
      { type: "get", to: opt.service },
      xml("request", { xmlns: "urn:xmpp:http:upload:0", filename: basename(file), size: String(size), "content-type": contentType }),
    ),
  );
  const slot = reply.getChild("slot", "urn:xmpp:http:upload:0");
  const put = slot.getChild("put");
  const get = slot.getChild("get").attrs.url;
  const headers = { "Content-Type": contentType };
  for (const h of put.getChildren("header")) headers[h.attrs.name] = h.text();
  const res = await fetch(put.attrs.url, { method: "PUT", headers, body: await readFile(file) });
  if (res.status !== 201 && res.status !== 200) {
    throw new Error(`PUT answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  }
  await xmpp.send(
    xml("message", { type: "chat", to: opt.to }, xml("body", {}, get), xml("x", { xmlns: "jabber:x:oob" }, xml("url", {}, get))),
  );
  console.log(`GET ${get}`);
}

let rc = 0;
try {
  await run();
} catch (err) {
  console.error(`xmpp.js upload failed: ${err.message}`);
  rc = 1;
}
try {
  await xmpp.stop();
} catch {
  // already closed
}
process.exit(rc);
