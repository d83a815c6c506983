/** Pruning passes: unstructured magnitude pruning and structured channel pruning. */
export { pruneUnstructured, pruneUnstructuredPass, pruneUnstructuredOptionsSchema, type PruneUnstructuredOptions } from './magnitude.ts';
export { pruneChannels, pruneChannelsPass, pruneChannelsOptionsSchema, floatParameters, type PruneChannelsOptions } from './channels/index.ts';
