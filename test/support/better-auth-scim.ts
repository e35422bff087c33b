/**
 * Test rig: an independent SCIM 2.0 server (better-auth 1.7.5 + @better-auth/scim 1.7.5, memory
 * adapter, one static bearer connection) running in a CHILD process on 127.0.0.1, so its memory
 * use and crashes stay out of the test process. Recipe: /work/shared/INTEROP-BETTER-AUTH.md.
 *
 *   const ba = await startBetterAuthScim();   // ba.baseUrl = http://127.0.0.1:PORT/api/auth/scim/v2
 *   fetch(`${ba.baseUrl}/Users`, { headers: { Authorization: `Bearer ${ba.token}` } });
 *   await ba.stop();                           // SIGTERM, bounded wait, then SIGKILL; idempotent
 *
 * Every start is a fresh, empty server with a fresh random token.
 *
 * Quirks observed here (Node 20.20, 2 vCPU) that differ from / add to INTEROP-BETTER-AUTH.md:
 * - Start-to-ready is ~1.6-1.8 s, not ~0.7 s: the doc's figure is for a plain .mjs script. Running
 *   the server as .ts under `--import tsx` routes every better-auth module load through tsx's
 *   loader hooks; importing better-auth + the scim plugin alone measured ~0.6 s plain vs ~1.2 s
 *   with tsx. Stop (SIGTERM -> exit) is ~20-30 ms, matching the doc's ~40 ms.
 * - Everything else matched the doc: 201 + Location built from the real port, userName eq filter,
 *   PATCH active false -> 200 with active:false, Group members echo {value,$ref,display,type:"User"},
 *   415 for text/plain, and 401 without a token: SCIM Error body {"status":"401","detail":"SCIM
 *   bearer token is required"} (wrong token: "Invalid SCIM bearer token"), `WWW-Authenticate:
 *   Bearer realm="SCIM"`. The server logged nothing on stdout or stderr during a normal run.
 * - Not in the doc: the server listens on 127.0.0.1 only, so `localhost` resolving to ::1 would not
 *   reach it. Use baseUrl as given.
 *
 * Process hygiene: the child exits on SIGTERM/SIGINT and also on stdin EOF (the parent holds that
 * pipe, so the child dies with the parent even when the parent is SIGKILLed); a process 'exit' hook
 * SIGKILLs it too. After ready the child and its pipes are unref'd, so a forgotten stop() does
 * not keep mocha alive. Note: in this sandbox PID 1 reaps orphans ~1 s late, so a killed orphan
 * can show up as a zombie (state Z) for a moment; `kill -0` still succeeds on zombies.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface BetterAuthScim {
  /** e.g. http://127.0.0.1:PORT/api/auth/scim/v2 (no trailing slash) */
  baseUrl: string;
  /** static bearer token accepted by the server; random per start */
  token: string;
  /** SIGTERM the child and wait for it to exit (bounded, then SIGKILL). Idempotent. */
  stop(): Promise<void>;
}

/** Exposed for tests that need to assert on the child (e.g. that it is gone after stop()). */
export interface BetterAuthScimInternal extends BetterAuthScim {
  pid: number;
  port: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER_SCRIPT = join(HERE, "better-auth-scim-server.ts");
/** Repo root: `--import tsx` and the better-auth packages resolve from its node_modules. */
const REPO_ROOT = resolve(HERE, "..", "..");

const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const STOP_KILL_MS = 2_000;
const STDERR_KEEP = 8_000;

interface ReadyLine {
  port: number;
  baseUrl: string;
  token: string;
}

function isReadyLine(v: unknown): v is ReadyLine {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.port === "number" && typeof o.baseUrl === "string" && typeof o.token === "string";
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolveWait) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolveWait(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolveWait(true);
    };
    child.once("exit", onExit);
  });
}

export function startBetterAuthScim(): Promise<BetterAuthScimInternal> {
  const child = spawn(process.execPath, ["--import", "tsx", SERVER_SCRIPT], {
    cwd: REPO_ROOT,
    // stdin is a pipe the child watches: EOF (parent died) makes it exit.
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, BETTER_AUTH_TELEMETRY: "0" },
  });

  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_KEEP);
  });
  // An EPIPE on stdin after the child died must not crash the test process.
  child.stdin!.on("error", () => {});

  // Last-resort cleanup if the test process exits without calling stop().
  const onParentExit = (): void => {
    if (!exited(child)) child.kill("SIGKILL");
  };
  process.once("exit", onParentExit);

  let stopPromise: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopPromise ??= (async () => {
      try {
        if (!exited(child)) {
          child.kill("SIGTERM");
          if (!(await waitForExit(child, STOP_GRACE_MS))) {
            child.kill("SIGKILL");
            await waitForExit(child, STOP_KILL_MS);
          }
        }
      } finally {
        child.stdin?.destroy();
        child.stdout?.destroy();
        child.stderr?.destroy();
        process.off("exit", onParentExit);
      }
    })();
    return stopPromise;
  };

  return new Promise<BetterAuthScimInternal>((resolveStart, rejectStart) => {
    let settled = false;
    let stdoutBuf = "";

    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const detail = stderr.trim() ? `\n--- child stderr ---\n${stderr.trim()}` : "";
      void stop().finally(() => rejectStart(new Error(`better-auth SCIM server: ${why}${detail}`)));
    };

    const timer = setTimeout(
      () => fail(`not ready within ${READY_TIMEOUT_MS} ms`),
      READY_TIMEOUT_MS,
    );

    child.once("error", (err) => fail(`spawn failed: ${err.message}`));
    child.once("exit", (code, signal) =>
      fail(`child exited before ready (code ${code}, signal ${signal})`),
    );

    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      if (settled) return;
      stdoutBuf += chunk;
      let nl: number;
      while ((nl = stdoutBuf.indexOf("\n")) >= 0) {
        const line = stdoutBuf.slice(0, nl).trim();
        stdoutBuf = stdoutBuf.slice(nl + 1);
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue; // not the protocol line
        }
        if (!isReadyLine(parsed)) continue;
        settled = true;
        clearTimeout(timer);
        // A forgotten stop() must not keep the test process alive: unref the child and its
        // pipes; the parent's exit hook (and the child's stdin-EOF watch) then end the child.
        child.unref();
        for (const s of [child.stdin, child.stdout, child.stderr]) (s as Socket | null)?.unref();
        resolveStart({
          baseUrl: parsed.baseUrl.replace(/\/+$/, ""),
          token: parsed.token,
          port: parsed.port,
          pid: child.pid!,
          stop,
        });
        return;
      }
    });
  });
}
