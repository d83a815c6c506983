import type { Param } from './layers/layer.ts';

/** Hyper-parameters of Adam with decoupled weight decay (AdamW, Loshchilov & Hutter 2019). */
export interface AdamOptions {
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
  /** Decoupled decay per step, multiplied by the learning rate; applies to params with `decay`. */
  readonly weightDecay?: number;
}

/** Adam over a fixed list of parameters; `step(lr)` applies the gradients the last backward pass left. */
export class Adam {
  private readonly firstMoments: Float32Array[];
  private readonly secondMoments: Float32Array[];
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private steps = 0;

  constructor(private readonly params: readonly Param[], options: AdamOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.firstMoments = params.map((p) => new Float32Array(p.value.length));
    this.secondMoments = params.map((p) => new Float32Array(p.value.length));
  }

  step(learningRate: number): void {
    this.steps++;
    const { beta1, beta2, epsilon } = this;
    const correction1 = 1 - beta1 ** this.steps;
    const correction2 = 1 - beta2 ** this.steps;
    for (let index = 0; index < this.params.length; index++) {
      const param = this.params[index]!;
      const m = this.firstMoments[index]!;
      const v = this.secondMoments[index]!;
      const { value, grad } = param;
      const decay = param.decay ? 1 - learningRate * this.weightDecay : 1;
      for (let i = 0; i < value.length; i++) {
        const g = grad[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * g;
        const vi = beta2 * v[i]! + (1 - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        value[i] = value[i]! * decay - (learningRate * (mi / correction1)) / (Math.sqrt(vi / correction2) + epsilon);
      }
    }
  }
}
