// Run a Python program in Pyodide (npm package, no CDN) with wsframed installed from wheels.
//
//   node --experimental-websocket run.mjs WHEEL_DIR PROGRAM.py ARGS_JSON
//
// WHEEL_DIR holds micropip's and packaging's wheels, the codecs' pure-Python wheels
// and wsframed's; all are installed with micropip from Pyodide's file system (emfs:),
// wsframed with its dependencies resolved, so its environment markers are exercised.
// The program defines `async def main(args)`, called with the dict ARGS_JSON holds;
// what it returns (a string) is printed on one line after "RESULT ".
import fs from "node:fs";
import path from "node:path";
import { loadPyodide } from "pyodide";

const [wheelDir, program, args] = process.argv.slice(2);
const wheels = fs.readdirSync(wheelDir).filter((name) => name.endsWith(".whl"));
const find = (prefix) => {
  const name = wheels.find((w) => w.startsWith(prefix + "-"));
  if (!name) throw new Error(`no ${prefix} wheel in ${wheelDir}`);
  return name;
};
const pyodide = await loadPyodide({ stdout: (s) => console.log(s), stderr: (s) => console.error(s) });
await pyodide.loadPackage(["micropip", "packaging"].map((p) => path.resolve(wheelDir, find(p))));
pyodide.FS.mkdirTree("/wheels");
for (const name of wheels) {
  pyodide.FS.writeFile(`/wheels/${name}`, fs.readFileSync(path.join(wheelDir, name)));
}
pyodide.globals.set("WHEELS", pyodide.toPy([find("msgpack"), find("cbor2"), find("wsframed")]));
await pyodide.runPythonAsync(`
import micropip
msgpack_wheel, cbor2_wheel, wsframed_wheel = WHEELS
await micropip.install([f"emfs:/wheels/{msgpack_wheel}", f"emfs:/wheels/{cbor2_wheel}"])
await micropip.install(f"emfs:/wheels/{wsframed_wheel}")  # its dependencies: already there
`);
pyodide.globals.set("ARGS_JSON", args);
try {
  await pyodide.runPythonAsync(fs.readFileSync(program, "utf8"));
  const result = await pyodide.runPythonAsync("import json; await main(json.loads(ARGS_JSON))");
  console.log("RESULT " + result);
} catch (error) {
  console.log("PYTHON-ERROR " + JSON.stringify(String(error.message)));
  process.exitCode = 1;
}
// A connection a failed scenario left open would keep Node running.
process.exit();
