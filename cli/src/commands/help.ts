/** The help texts: what each command does, with an example, the flags, and what it writes. */
export const MAIN_HELP = `loraforge: LoRA fine-tuning of Llama-family models, on this machine or on Kubernetes.

Usage: loraforge <command> [options]      (loraforge help <command> for details)

Commands:
  validate <dataset>            check an Alpaca JSON/JSONL dataset; errors name record and line
  prepare <dataset> ...         dataset -> token shards for the trainer (template, tokenize, mask)
  train <spec.yaml>             run a LoraFineTune spec locally: prepare, train, pick the adapter
  eval <spec.yaml>              base vs fine-tuned: generate, score, metrics, eval.json
  import llama2c <ckpt> <tok>   turn a llama2.c checkpoint + tokenizer into a Hugging Face model dir
  export onnx <model-dir>       the model (merged with --adapter) as an ONNX decoder with KV cache
  chat <model-dir>              a local web page to try the base and the tuned model side by side
  job --spec FILE               the trainer Job's entrypoint inside Kubernetes (set up by the operator)

First run (no cluster, no GPU):   npm run demo
`;

export const COMMAND_HELP: Record<string, string> = {
  validate: `loraforge validate <dataset> [options]

Checks an Alpaca dataset (a JSON array of {instruction, input, output} records, or JSON Lines)
and prints every problem with its file, line, record (counted from 0, as array indices) and field.
Records with an empty instruction or output are rejected (left out, reported); unknown fields are
warned about; duplicates and records shared by the training and validation splits are counted.
Nothing is written. Exit code 0 when the dataset is usable, 3 when it is not.

Options:
  --format auto|json|jsonl   file format (default: from the first character)
  --val-set-size N           also check the seeded train/validation split (default 2000)
  --seed N                   seed of that split (default 42)
  --model DIR                with the model's tokenizer: tokens per record, share truncated
  --template NAME|FILE       alpaca (default), alpaca_short, or a template JSON file
  --cutoff N                 cutoff length in tokens for the statistics (default 512)
  --strict                   warnings count as errors
  --json                     print the report as JSON (for scripts)

Example:
  loraforge validate data/alpaca.json --model models/llama-2-7b-hf
`,
  prepare: `loraforge prepare <dataset> --model DIR --out DIR [options]

Turns a dataset into token shards (docs/CONTRACTS.md §3) for the trainer: validates it, splits off
a seeded validation set, renders each record with the prompt template, tokenizes it with the
model's own tokenizer.json (bos/eos checked), masks the prompt tokens out of the loss (unless
--train-on-inputs), appends EOS, truncates at the cutoff. Writes DIR/train.lfs, DIR/val.lfs and
DIR/manifest.json, or nothing at all when the dataset has an error.

Options:
  --model DIR                Hugging Face model directory (tokenizer.json, config.json)
  --out DIR                  where the shards go
  --template NAME|FILE       alpaca (default), alpaca_short, or an alpaca-lora template JSON file
  --cutoff N                 maximum tokens per example (default 512)
  --val-set-size N           validation records (default 2000, at most a fifth of the data)
  --seed N                   seed of the split (default 42)
  --train-on-inputs          also train on the prompt tokens (off: the prompt-repeater failure)
  --no-eos                   do not append EOS (the model will not learn to stop)
  --format auto|json|jsonl

Example:
  loraforge prepare examples/stories-instruct/stories.jsonl --model .cache/models/stories260K --out /tmp/shards
`,
  train: `loraforge train <spec.yaml> [options]

Runs a LoraFineTune manifest (the same spec the operator runs) on this machine: prepares the data
into <out>/data, runs the native trainer (native/build/loraforge-core, or $LORAFORGE_CORE) with a
live progress line, writes <out>/metrics.jsonl and <out>/loss_curve.png, applies the spec's
checkpointSelection (lowestTrainLoss by default; last; lowestEvalLoss; bestEvalScore: each kept
checkpoint generates for the evaluation's examples, the best spec.evaluation.scoreMetric wins) and
copies the chosen adapter to <out>/adapter (PEFT format), then prints a summary. With
spec.evaluation enabled (the default) it ends with \`loraforge eval\`: base vs fine-tuned on the
validation split, the metric table, two sample answers, <out>/eval.json.
Ctrl-C stops after saving a checkpoint; running the same command again resumes from it.

A local run reads files: a pvc source {claimName, path} is looked up in the directory given with
--volume CLAIM=DIR (by default the spec file's own directory).

Options:
  --out DIR             output directory (default: spec.output.pvc on its volume)
  --volume CLAIM=DIR    where a PersistentVolumeClaim's files are on this machine (repeatable)
  --backend cpu|cuda    trainer backend (default cpu)
  --threads N           CPU threads for the trainer (default: all cores)
  --fresh               discard this output directory's checkpoints and start over
  --quiet               no progress line
  --verbose             also show the trainer's own log

Example:
  loraforge train examples/stories260k-demo.yaml --volume models=.cache/models --out .cache/runs/demo
`,
  eval: `loraforge eval <spec.yaml> [options]
       loraforge eval --model DIR [--adapter DIR] --data FILE --out DIR [options]

Evaluates the base model and the fine-tuned one (base + adapter) on held-out examples: the
validation split training used (same seed, same split), or --eval-file. The native core generates
both models' answers in one process (prompt = the template up to "### Response:\n") and scores
the reference answers; the cli computes eval loss, perplexity, exact match, token F1, ROUGE-L,
prompt repetition, share of answers that stopped and mean length (definitions: docs/CONTRACTS.md
§5). Prints the metric table and sample answers side by side; writes <out>/eval.json.
With a spec, the adapter is <out>/adapter and the settings come from spec.evaluation.

Options:
  --out DIR               output directory (default: the spec's); eval.json goes there
  --volume CLAIM=DIR      as for train
  --adapter DIR           the adapter to evaluate (default with a spec: <out>/adapter)
  --eval-file FILE        evaluate on this dataset instead of the validation split
  --samples N             examples to evaluate (default spec.evaluation.samples, or 50)
  --show N                sample answers to print (default 3)
  --max-new-tokens N      at most N new tokens (default spec.evaluation.maxNewTokens, or 256;
                          never past the cutoff after the longest prompt)
  --temperature T         0 = greedy (default); > 0 samples, with --top-k, --top-p,
                          --repetition-penalty, --sampling-seed (default the training seed)
  --batch-size N          prompts decoded together (default 8)
  --threads N             CPU threads for the core (default: all cores)
Without a spec:
  --model DIR --data FILE --template NAME|FILE --cutoff N (default 512)
  --val-set-size N --seed N   evaluate on the validation split \`prepare\` makes with these
                          (default: the whole --data file)

Example:
  loraforge eval examples/stories260k-demo.yaml --volume models=.cache/models --out .cache/runs/stories260k-demo
`,
  job: `loraforge job --spec FILE

The entrypoint of the training Job that the operator creates; not meant to be typed by hand.
Reads the LoraFineTune mounted at FILE, runs the same pipeline as \`loraforge train\` on the
Job's volumes, and reports progress, checkpoints, the adapter and the evaluation summary into
the resource's status through the run's own ServiceAccount (at most every 10 s; API errors never
stop training). The exit code follows docs/CONTRACTS.md; the last error also goes to the
termination log, where the operator reads the failure reason.

Environment (set by the operator):
  LORAFORGE_OUTPUT_DIR         run directory on the output volume (required)
  LORAFORGE_MODEL_DIR          base model directory on the model volume
  LORAFORGE_DATASET_PATH       dataset file on the dataset volume
  LORAFORGE_RUN_NAMESPACE      namespace of the LoraFineTune (default: the manifest's)
  LORAFORGE_STATUS_INTERVAL_S  seconds between status patches (default 10)
  LORAFORGE_TERMINATION_LOG    where the failure message goes (default /dev/termination-log)

Example: what the operator's Job runs
  loraforge job --spec /etc/loraforge/spec.yaml
`,
  export: `loraforge export onnx <model-dir> [--adapter DIR] [--out DIR] [--dtype fp32|fp16] [--force]

Writes the model as an ONNX Llama decoder with KV cache, in the input/output names of
transformers.js and onnxruntime-genai (input_ids, attention_mask, position_ids,
past_key_values.N.key|value -> logits, present.N.key|value), built from standard ai.onnx ops
(opset 17), so it runs for any head size. With --adapter, the adapter is first merged into the
weights by loraforge-core merge. fp16 stores the weights as float16 (half the file) and computes
in float32, as ONNX Runtime's CPU provider needs. Weights over 2 GB go to model.onnx.data.
The directory also gets config.json, the tokenizer files and genai_config.json; it appears whole
or not at all.

Options:
  --adapter DIR       a PEFT LoRA adapter to merge first
  --out DIR           output directory (default: <adapter or model dir>-onnx)
  --dtype fp32|fp16   weight storage (default fp32)
  --force             replace an existing output directory

Example:
  loraforge export onnx .cache/models/stories260K --adapter .cache/runs/demo/adapter --out .cache/onnx/demo
`,
  chat: `loraforge chat <model-dir> [--adapter DIR | --onnx FILE] [options]

Serves a local web page like alpaca-lora's generate.py UI: an instruction and an optional input,
the generation settings (temperature, top p, top k, repetition penalty, max new tokens, seed;
temperature 0 is greedy), a switch between the base model and the tuned one, and the response
streamed token by token. Inference runs on ONNX Runtime (CPU) in a worker thread, on the model
exported as by \`loraforge export onnx\` (the tuned one with --adapter merged, or the exported
model.onnx given with --onnx). Generation stops at EOS or BOS.

Options:
  --adapter DIR        PEFT adapter of the tuned model
  --onnx FILE          an exported tuned model (model.onnx with its config.json beside it)
  --template NAME|FILE alpaca (default), alpaca_short, or a template JSON file
  --port N             port (default 7860; 0 = any free port)
  --host ADDR          address to listen on (default 127.0.0.1)
  --threads N          ONNX Runtime threads (default: up to 4)

Example:
  loraforge chat .cache/models/stories260K --adapter .cache/runs/demo/adapter --template alpaca_short
`,
  import: `loraforge import llama2c <checkpoint.bin> <tokenizer.model|tokenizer.bin> --out DIR [--force]

Converts a llama2.c checkpoint (version-0 export, as run.c reads it) and its sentencepiece
tokenizer into a Hugging Face LlamaForCausalLM directory: config.json, model.safetensors (q/k
rows permuted from llama2.c's interleaved RoPE to Hugging Face's rotate_half layout),
tokenizer.json (a byte-fallback BPE that encodes exactly as sentencepiece does),
tokenizer_config.json, generation_config.json. The directory appears whole or not at all;
importing the same files again is a no-op.

Example:
  loraforge import llama2c ../shared/assets/stories260K/stories260K.bin ../shared/assets/stories260K/tok512.model --out .cache/models/stories260K
`,
};
