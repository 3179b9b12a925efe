// The jsonata-js reference of `switchyard-bench normalizer`: compiles one JSONata
// expression once, parses one payload once, evaluates it `warmup` times (not measured:
// V8 compiles the hot paths), then `iterations` times, and prints one JSON line with the
// CPU time per evaluation (process.cpuUsage: user + system, all of Node's threads, so
// garbage collection counts) and the wall time per evaluation.
//
//   node eval.js <expression file> <payload file> [iterations] [warmup]
"use strict";

const fs = require("fs");
const jsonata = require("jsonata");

async function main() {
  const [exprPath, payloadPath, iterArg, warmArg] = process.argv.slice(2);
  if (!exprPath || !payloadPath) {
    throw new Error("usage: node eval.js <expression file> <payload file> [iterations] [warmup]");
  }
  const iterations = Number(iterArg || 20000);
  const warmup = Number(warmArg || 2000);
  const expression = jsonata(fs.readFileSync(exprPath, "utf8"));
  const input = JSON.parse(fs.readFileSync(payloadPath, "utf8"));

  let result;
  for (let i = 0; i < warmup; i++) {
    result = await expression.evaluate(input);
  }
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    result = await expression.evaluate(input);
  }
  const wallNs = Number(process.hrtime.bigint() - wall0);
  const cpu = process.cpuUsage(cpu0);
  if (result === undefined) {
    throw new Error("the expression's result is undefined on this payload");
  }
  const version = require("jsonata/package.json").version;
  process.stdout.write(
    JSON.stringify({
      engine: `jsonata-js ${version}`,
      node: process.version,
      iterations,
      warmup,
      cpu_us_per_eval: (cpu.user + cpu.system) / iterations,
      wall_us_per_eval: wallNs / 1000 / iterations,
      result_bytes: JSON.stringify(result).length,
    }) + "\n"
  );
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
