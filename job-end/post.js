// Post step of github-p2p's job-end action, at the end of the job: run the stop script of the
// github-p2p checkout that started the daemon. It stops the daemon (unless the stop action did
// already) and writes the job summary. Never fails the job. No dependencies: plain Node.
"use strict";
const fs = require("fs");
const path = require("path");
const { spawnSync } = require("child_process");

function state(name) {
  return (process.env[`STATE_${name}`] || process.env[`INPUT_${name.toUpperCase()}`] || "").trim();
}

function main() {
  const stateDir = state("state-dir");
  if (!stateDir) {
    console.log("github-p2p: nothing to stop (the action did not get as far as a state directory).");
    return;
  }
  const script = path.join(state("action-path"), "scripts", "action", "stop.py");
  if (!fs.existsSync(script)) {
    console.log(`::warning title=github-p2p::job-end: ${script} not found; the daemon was not stopped`);
    return;
  }
  const env = {
    ...process.env,
    GP_STATE_DIR: stateDir,
    GP_WHEN: "job-end",
    GP_SUMMARY: state("summary") || "true",
  };
  for (const python of [state("python"), "python3", "python"].filter(Boolean)) {
    const run = spawnSync(python, [script], { env, stdio: "inherit", timeout: 120000 });
    if (run.error && run.error.code === "ENOENT") {
      continue; // try the next interpreter
    }
    if (run.error) {
      console.log(`::warning title=github-p2p::job-end: ${run.error.message}`);
    }
    return;
  }
  console.log("::warning title=github-p2p::job-end: no Python to run the stop script");
}

try {
  main();
} catch (error) {
  console.log(`::warning title=github-p2p::job-end failed: ${error}`);
}
process.exitCode = 0;
