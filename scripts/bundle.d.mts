// Types of scripts/bundle.mjs for the TypeScript tests that call it.
export const REPO: string;
export const EXTERNAL: string[];
type Entry = { outfile: string };
export const BUNDLES: { cli: [Entry, Entry]; operator: [Entry]; action: [Entry] };
export function bundle(names?: string[]): Promise<string[]>;
export function cliBundle(): Promise<string>;
