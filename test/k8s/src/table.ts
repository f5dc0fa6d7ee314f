// `kubectl get` as tests see it: the API server builds the Table (for a custom resource, from
// the CRD's additionalPrinterColumns) when asked the way kubectl asks; kubectl only lays it
// out. One copy of both halves, so every test that shows a table shows what kubectl would.

import type { KubeClient } from "@loraforge/kube";
import { z } from "zod";

/** The Accept header of `kubectl get`: a meta.k8s.io/v1 Table instead of the objects. */
export const TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io";

export const ServerTableSchema = z.object({
  kind: z.literal("Table"),
  columnDefinitions: z.array(
    z.object({ name: z.string(), type: z.string(), priority: z.number().optional() }),
  ),
  rows: z.array(z.object({ cells: z.array(z.unknown()) })),
});
export type ServerTable = z.infer<typeof ServerTableSchema>;

/** GET `path` (a collection) as a Table, the request `kubectl get` makes. */
export async function getTable(client: KubeClient, path: string): Promise<ServerTable> {
  return ServerTableSchema.parse(await client.getAs(path, TABLE_ACCEPT));
}

/** The cells of the row whose first cell (NAME) is `name`, by column name. */
export function rowOf(table: ServerTable, name: string): Record<string, unknown> | undefined {
  const row = table.rows.find((r) => r.cells[0] === name);
  if (!row) return undefined;
  return Object.fromEntries(
    table.columnDefinitions.map((c, i) => [c.name, row.cells[i] ?? undefined]),
  );
}

/**
 * The Table laid out as kubectl prints it: upper-case headers, columns three spaces apart,
 * `<none>` for an empty cell; without `wide`, columns of priority > 0 are left out
 * (`-o wide` shows them).
 */
export function renderTable(table: ServerTable, { wide = false } = {}): string {
  const shown = table.columnDefinitions
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => wide || (c.priority ?? 0) === 0);
  const text = (v: unknown) => (v === null || v === undefined || v === "" ? "<none>" : String(v));
  const grid = [
    shown.map(({ c }) => c.name.toUpperCase()),
    ...table.rows.map((r) => shown.map(({ i }) => text(r.cells[i]))),
  ];
  const widths = shown.map((_, j) => Math.max(...grid.map((row) => (row[j] ?? "").length)));
  return grid
    .map((row) =>
      row
        .map((cell, j) => (j === row.length - 1 ? cell : cell.padEnd((widths[j] ?? 0) + 3)))
        .join(""),
    )
    .join("\n");
}
