// The Sentra extension: the languages and grammars come from package.json; this file starts
// `sentra-lang lsp` (over stdio) as the language server for .sentra and .sentra-test files.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function settings() {
  const config = vscode.workspace.getConfiguration("sentra");
  return {
    command: config.get("server.command", "sentra-lang"),
    args: config.get("server.args", ["lsp"]),
    diagnosticsDelay: config.get("diagnosticsDelay", 50),
  };
}

async function start() {
  const { command, args, diagnosticsDelay } = settings();
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const server = { command, args, transport: TransportKind.stdio, options: { cwd } };
  client = new LanguageClient("sentra", "Sentra", server, {
    documentSelector: [{ language: "sentra" }, { language: "sentra-test" }],
    synchronize: {
      // imported libraries and a suite's policy are read from disk: re-check when they change
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{sentra,sentra-test}"),
    },
    initializationOptions: { diagnosticsDelay },
  });
  try {
    await client.start();
  } catch (error) {
    client = undefined;
    vscode.window.showErrorMessage(
      `Sentra: cannot start \`${command} ${args.join(" ")}\` (${error.message}). ` +
        "Install it with `pip install 'sentra-lang[lsp]'` or set `sentra.server.command`.",
    );
  }
}

async function stop() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop();
  }
}

async function restart() {
  await stop();
  await start();
}

function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand("sentra.restartServer", restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("sentra.server") ||
          event.affectsConfiguration("sentra.diagnosticsDelay")) {
        restart();
      }
    }),
  );
  return start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
