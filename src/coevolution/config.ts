import { z } from 'zod';

const criteria = {
  maxProbabilityBelow: z.number().min(0).max(1).optional().describe('Hard when the largest softmax probability is below this.'),
  marginBelow: z.number().min(0).max(1).optional().describe('Hard when top-1 minus top-2 probability is below this.'),
  normalizedEntropyAbove: z.number().min(0).max(1).optional().describe('Hard when the softmax entropy / log(classes) is above this.'),
};

export const miningRuleSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('classification'), output: z.string().optional().describe('Output holding the logits; the first output when absent.'), ...criteria }).strict(),
  z
    .object({
      kind: z.literal('detection'),
      scoresOutput: z.string().describe('Output holding one confidence score per candidate box.'),
      keepThreshold: z.number().min(0).max(1).describe('Boxes scoring below this are discarded by the application.'),
      confidentThreshold: z.number().min(0).max(1).describe('Kept boxes scoring below this are unsure.'),
      shareAbove: z.number().min(0).max(1).describe('A frame is hard when more than this share of its kept boxes is unsure.'),
    })
    .strict(),
]);

/** coevolution/: hard-sample mining and upload, the cloud cascade, drift detection (README "Edge–cloud co-evolution"). */
export const coevolutionConfigSchema = z
  .object({
    enabled: z.boolean().default(false).describe('Opt-in: build the device side (quality telemetry, drift, and mining/cascade as their own switches say) into edgevolve run.'),
    mining: z
      .object({
        enabled: z.boolean().default(false).describe('Opt-in: keep hard samples (inputs leave the device when uploaded).'),
        rules: z.record(z.string(), miningRuleSchema).default({}).describe('Per model name: how its answers are judged.'),
        defaultRule: miningRuleSchema.optional().describe('For models without a rule; such models are not mined when absent.'),
        maxPerMinute: z.number().positive().default(60).describe('Sampling-rate cap: hard samples kept per minute (token bucket).'),
        maxPerDay: z.number().int().positive().default(2000).describe('Hard samples kept per UTC day.'),
        maxBytesPerDay: z.number().int().positive().default(50 * 1024 * 1024).describe('Bytes of hard samples kept per UTC day.'),
        quotaBytes: z.number().int().positive().default(200 * 1024 * 1024).describe('Disk space the stored samples may use at once.'),
        dir: z.string().optional().describe('Sample store directory; <stateDir>/samples when absent.'),
      })
      .strict()
      .prefault({})
      .describe('Hard-sample mining: which answers count as hard and are kept for upload.'),
    upload: z
      .object({
        target: z.enum(['none', 'http', 'registry']).default('none').describe('Where batches go: an HTTP endpoint (edgevolve cloud receive) or the registry as OCI artifacts.'),
        url: z.string().url().optional().describe('http: the endpoint, e.g. https://cloud.example/v1/samples.'),
        repository: z.string().optional().describe('registry: host[:port]/repo the batches are pushed to (tag samples-<device>-<batch>).'),
        token: z.string().optional().describe('http: bearer token.'),
        batchSize: z.number().int().positive().max(10_000).default(100).describe('Samples per batch.'),
        intervalS: z.number().positive().default(300).describe('Seconds between upload attempts.'),
        timeoutMs: z.number().int().positive().default(30_000).describe('Per-batch request timeout, ms.'),
      })
      .strict()
      .prefault({})
      .describe('Where mined samples go (http endpoint or OCI registry), and how often.'),
    cascade: z
      .object({
        enabled: z.boolean().default(false).describe('Ask the cloud model when the local one is unsure.'),
        url: z.string().url().optional().describe('Base URL of the cloud KServe v2 server.'),
        cloudModel: z.string().default('{model}').describe('Cloud model name; {model} is replaced by the local model name.'),
        criteria: z.object(criteria).strict().prefault({ marginBelow: 0.3 }).describe('When to ask the cloud (any criterion).'),
        deadlineMs: z.number().int().positive().default(200).describe('The cloud answer is used only if it arrives within this, ms.'),
        breakerFailures: z.number().int().positive().default(5).describe('Consecutive cloud failures that open the circuit breaker.'),
        breakerOpenMs: z.number().int().positive().default(30_000).describe('How long the breaker stays open before one trial request, ms.'),
        token: z.string().optional().describe('Bearer token for the cloud server.'),
      })
      .strict()
      .prefault({})
      .describe('Cloud cascade: unsure local answers are asked again of a cloud KServe model.'),
    drift: z
      .object({
        enabled: z.boolean().default(true).describe('Compare live confidence/entropy with the distribution at deployment.'),
        bins: z.number().int().min(2).max(100).default(10).describe('Histogram bins of the confidence/entropy distributions the PSI compares.'),
        referenceSize: z.number().int().positive().default(500).describe('Answers after a deployment that form the reference.'),
        windowSize: z.number().int().positive().default(500).describe('Answers per live window scored against the reference.'),
        threshold: z.number().positive().default(0.2).describe('PSI above which an event is published (0.1-0.25 moderate, >0.25 significant).'),
        clearBelow: z.number().nonnegative().optional().describe('Hysteresis: after a drift event, a window must score below this before the drift clears (another event); threshold / 2 when absent.'),
      })
      .strict()
      .prefault({})
      .describe('Drift detection: PSI of live confidence/entropy against the distribution after a deployment.'),
    collect: z
      .object({
        maxWaitS: z.number().positive().default(300).describe('collect-samples command: how long it waits for live inferences that meet its criterion before uploading what it has.'),
        highEntropyAbove: z.number().min(0).max(1).default(0.5).describe('collect-samples "high-entropy": normalized entropy above this, unless the model\'s rule sets normalizedEntropyAbove.'),
      })
      .strict()
      .prefault({})
      .describe('The collect-samples fleet command.'),
  })
  .strict()
  .refine((c) => c.drift.clearBelow === undefined || c.drift.clearBelow <= c.drift.threshold, { message: 'drift.clearBelow must not exceed drift.threshold', path: ['drift', 'clearBelow'] });

export type CoevolutionConfig = z.infer<typeof coevolutionConfigSchema>;
