// Bundles the chat page (src/chat.jsx) into static/chat/chat.js, which is committed and served
// by Django's static files. `npm run build` writes it; `npm run check` (tests/agent_api/
// test_chat_bundle.py) exits 1 when the committed bundle differs from what the source builds.
// `node build.mjs --dev` writes it unminified, to debug (never commit that).
// Beside it, bundled-licenses.json names every package whose code is in the bundle, with its
// licence text: scripts/notice writes them into NOTICE.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outfile = join(here, "..", "..", "static", "chat", "chat.js");
const licences = join(here, "bundled-licenses.json");
const check = process.argv.includes("--check");

// The package an input file belongs to: the last node_modules/<name> in its path. The SDK's
// build vendors a few packages under dist/node_modules/.pnpm/<name>@<version>/ without their
// package.json: those are read from the same package installed at the top (same licence).
function packageOf(input) {
  const at = input.lastIndexOf("node_modules/");
  if (at < 0) return null;
  const parts = input.slice(at + "node_modules/".length).split("/");
  const name = parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
  const vendored = input.match(/\.pnpm\/((?:@[^/]+\+)?[^/@]+)@([^/]+)\//);
  const dir = join(here, vendored ? join("node_modules", name) : input.slice(0, at) + "node_modules/" + name);
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  return {
    name,
    version: vendored ? vendored[2] : meta.version,
    license: meta.license,
    author: typeof meta.author === "string" ? meta.author : meta.author?.name,
    within: vendored ? input.slice(0, at).replace(/^node_modules\//, "").split("/dist/")[0] : undefined,
    text: file ? readFileSync(join(dir, file), "utf8").trim() : "",
  };
}

function bundledPackages(metafile) {
  const found = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const pkg = packageOf(input);
    if (pkg) found.set(`${pkg.name}@${pkg.version}`, pkg);
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

const result = await esbuild.build({
  entryPoints: [join(here, "src", "chat.jsx")],
  outfile,
  bundle: true,
  minify: !process.argv.includes("--dev"),
  format: "iife",
  target: "es2020",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "eof",  // the licence notices of React and the SDK stay in the bundle
  logLevel: "warning",
  metafile: true,
  write: !check,
});
const licenceText = JSON.stringify(bundledPackages(result.metafile), null, 2) + "\n";
if (!check) writeFileSync(licences, licenceText);

if (check) {
  const built = result.outputFiles[0].text;
  const committed = (path) => (existsSync(path) ? readFileSync(path, "utf8") : "");
  if (built !== committed(outfile) || licenceText !== committed(licences)) {
    console.error("static/chat/chat.js or clients/js/bundled-licenses.json is not what clients/js/src builds: "
                  + "run `npm run build` in clients/js, then scripts/notice.");
    process.exit(1);
  }
  console.log("static/chat/chat.js is up to date.");
}
