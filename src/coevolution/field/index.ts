export { applyFieldShift, type FieldShift, type ImageBatch } from './shift.ts';
export { loadFieldData, DEFAULT_FIELD_SHIFT, type FieldData, type FieldSet } from './field-data.ts';
export { loadTrainingReplay } from './replay.ts';
