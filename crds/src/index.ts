export * from "./conditions.ts";
export * from "./gpus.ts";
export * from "./hosts.ts";
export * from "./lorafinetune.ts";
export * from "./outputs.ts";
export * from "./spec.ts";
export * from "./status.ts";
