// Evaluates IAM requests as AWS does, with @cloud-copilot/iam-simulate: one JSON simulation
// a line on stdin, one JSON answer a line on stdout, in order. Run by local/aws/iam/policies.py.
"use strict";
const readline = require("node:readline");
const { runSimulation } = require("@cloud-copilot/iam-simulate");

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  // One at a time, so answers come back in the order asked.
  queue = queue.then(async () => {
    let answer;
    try {
      const result = await runSimulation(JSON.parse(line), {});
      answer = result.resultType === "error"
        ? { error: result.errors.message || JSON.stringify(result.errors) }
        : { result: result.overallResult };
    } catch (error) {
      answer = { error: String(error && error.stack ? error.stack : error) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  });
});
