export { SampleStore, utcDay, type NewSample, type StoredSample, type SampleLimits, type AddResult, type PendingBatch } from './store.ts';
export { HardSampleMiner, type MinerOptions, type ModelMiningRule, type ObservedInference, type SampleSink, type MinerStats } from './miner.ts';
export { uploadPending, httpTransport, encodeBatch, type BatchTransport, type SampleBatch, type UploadedSample, type UploadReport, type BatchDocument } from './upload.ts';
export { registryTransport, sampleBatchTag, SAMPLE_MEDIA_TYPE } from './registry-transport.ts';
