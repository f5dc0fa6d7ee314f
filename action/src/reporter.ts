// The one module that talks to @actions/core: logs, annotations, outputs, the job summary,
// masking and the exit code. The rest of the action takes a Reporter, so tests can record
// what a run reported without parsing workflow commands.

import * as core from "@actions/core";

export interface Annotation {
  /** Path relative to the repository root, as GitHub shows it in the PR's "Files" tab. */
  file: string;
  line?: number;
  title?: string;
}

export interface Reporter {
  info(message: string): void;
  notice(message: string, where?: Annotation): void;
  warning(message: string, where?: Annotation): void;
  error(message: string, where?: Annotation): void;
  setOutput(name: string, value: string): void;
  /** Appends markdown to the job summary (written once at the end of the run). */
  summary(markdown: string): void;
  setSecret(value: string): void;
  setFailed(message: string): void;
  /** Writes the collected summary. */
  flush(): Promise<void>;
}

function properties(where: Annotation | undefined): core.AnnotationProperties {
  if (!where) return {};
  return {
    file: where.file,
    ...(where.line !== undefined ? { startLine: where.line } : {}),
    ...(where.title !== undefined ? { title: where.title } : {}),
  };
}

/** The runner's Reporter: workflow commands on stdout, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY. */
export function actionsReporter(): Reporter {
  const parts: string[] = [];
  return {
    info: (m) => core.info(m),
    notice: (m, w) => core.notice(m, properties(w)),
    warning: (m, w) => core.warning(m, properties(w)),
    error: (m, w) => core.error(m, properties(w)),
    setOutput: (n, v) => core.setOutput(n, v),
    summary: (md) => {
      parts.push(md);
    },
    setSecret: (v) => core.setSecret(v),
    setFailed: (m) => core.setFailed(m),
    flush: async () => {
      if (parts.length === 0 || !process.env.GITHUB_STEP_SUMMARY) return;
      await core.summary.addRaw(parts.join("\n\n"), true).write();
      parts.length = 0;
    },
  };
}

/** Reads an input the way the runner passes it (INPUT_<NAME>, trimmed). */
export function actionInput(name: string): string {
  return core.getInput(name);
}
