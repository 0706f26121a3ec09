// Main step of github-p2p's job-end action: remember what the post step needs. The work happens
// in post.js, at the end of the job. No dependencies: plain Node.
"use strict";
const fs = require("fs");

const names = ["state-dir", "python", "action-path", "summary"];
const lines = [];
for (const name of names) {
  const value = (process.env[`INPUT_${name.toUpperCase()}`] || "").trim();
  if (/[\r\n]/.test(value)) {
    console.log(`::warning title=github-p2p::job-end: input ${name} spans lines; ignored`);
    continue;
  }
  lines.push(`${name}=${value}`);
}
if (process.env.GITHUB_STATE) {
  fs.appendFileSync(process.env.GITHUB_STATE, lines.join("\n") + "\n");
}
