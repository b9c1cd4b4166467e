#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// How the learning rate evolves over training steps (1-based step s of `totalSteps`).
public enum LearningRateSchedule: Sendable, Equatable {
    /// lr at every step.
    case constant
    /// Half-cosine decay from lr (step 1) towards `floor`·lr at `totalSteps`:
    /// lr·(floor + (1 − floor)·½(1 + cos(π·(s − 1)/max(totalSteps − 1, 1)))).
    case cosine(totalSteps: Int, floor: Float = 0)
    /// Linear warm-up from 0 over `warmupSteps`, then linear decay to 0 at `totalSteps`, as
    /// transformers' `get_linear_schedule_with_warmup` steps it (the scheduler advanced after each
    /// update, so 1-based step s uses k = s − 1): k/w while k < w, else (T − k)/(T − w), at least 0.
    case linearWarmup(warmupSteps: Int, totalSteps: Int)
    /// `get_cosine_schedule_with_warmup`: k/w while k < w, then ½(1 + cos(π·(k − w)/(T − w))).
    case cosineWarmup(warmupSteps: Int, totalSteps: Int)
    /// `get_constant_schedule_with_warmup`: k/w while k < w, then 1.
    case constantWarmup(warmupSteps: Int)

    /// The warm-up length of the `…Warmup` schedules (nil for the others).
    private var warmupSteps: Int? {
        switch self {
        case .constant, .cosine: nil
        case let .linearWarmup(w, _), let .cosineWarmup(w, _), let .constantWarmup(w): w
        }
    }

    /// The multiplier of the base learning rate at 1-based step `step`.
    public func factor(step: Int) -> Float {
        // The warm-up schedules step as transformers' schedulers do: k = s − 1, k/w while k < w.
        let k = max(step - 1, 0)
        if let w = warmupSteps, k < w { return Float(k) / Float(w) }
        switch self {
        case .constant: return 1
        case let .cosine(total, floor):
            let progress = Float(min(max(step - 1, 0), max(total - 1, 1))) / Float(max(total - 1, 1))
            return floor + (1 - floor) * 0.5 * (1 + cosf(Float.pi * progress))
        case let .linearWarmup(w, total):
            return max(0, Float(total - k) / Float(max(total - w, 1)))
        case let .cosineWarmup(w, total):
            let progress = Double(k - w) / Double(max(total - w, 1))
            return Float(max(0, 0.5 * (1 + cos(Double.pi * progress))))
        case .constantWarmup:
            return 1
        }
    }
}

/// Settings of `AdamOptimizer`.
public struct AdamOptions: Sendable, Equatable {
    /// Base learning rate.
    public var learningRate: Float
    /// First-moment decay β₁.
    public var beta1: Float
    /// Second-moment decay β₂.
    public var beta2: Float
    /// ε added to √v̂.
    public var epsilon: Float
    /// Decoupled weight decay (AdamW): θ ← θ − lr·λ·θ before the Adam step; 0 = plain Adam.
    public var weightDecay: Float
    /// Rescales the whole gradient (all tensors together) to this global L2 norm when it is
    /// larger; nil = no clipping.
    public var clipNorm: Float?
    /// The learning rate's multiplier per step.
    public var schedule: LearningRateSchedule

    /// Settings (torch.optim.Adam's defaults, clipping at 1, constant rate).
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, clipNorm: Float? = 1, schedule: LearningRateSchedule = .constant) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
        self.weightDecay = weightDecay; self.clipNorm = clipNorm; self.schedule = schedule
    }
}

/// Adam / AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019) with bias correction, global-norm
/// gradient clipping and a learning-rate schedule, over a fixed list of tensors: step s uses
/// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − lr_s·(m/(1−β₁ˢ)) / (√(v/(1−β₂ˢ)) + ε), as
/// `torch.optim.Adam(W)` does. Deterministic: no randomness, elementwise in a fixed order.
public struct AdamOptimizer: Sendable {
    /// Its settings.
    public var options: AdamOptions
    /// Steps taken so far.
    public private(set) var step: Int = 0
    private var m: [[Float]] = []
    private var v: [[Float]] = []

    /// An optimizer that has taken no step.
    public init(options: AdamOptions) { self.options = options }

    /// What a checkpoint keeps of the optimizer: steps taken and the moments m, v per tensor.
    public struct State: Sendable, Equatable {
        /// Steps taken.
        public var step: Int
        /// First moments, shaped as the parameters (empty before the first step).
        public var m: [Tensor]
        /// Second moments, shaped as the parameters (empty before the first step).
        public var v: [Tensor]

        /// A state.
        public init(step: Int, m: [Tensor], v: [Tensor]) { self.step = step; self.m = m; self.v = v }
    }

    /// The state, its moments shaped as `parameters` (the tensors `update` is given).
    public func state(shapedAs parameters: [Tensor]) -> State {
        guard !m.isEmpty else { return State(step: step, m: [], v: []) }
        return State(step: step, m: zip(m, parameters).map { Tensor(shape: $1.shape, scalars: $0) },
                     v: zip(v, parameters).map { Tensor(shape: $1.shape, scalars: $0) })
    }

    /// Continues from `state` (taken with `state(shapedAs:)` of the same parameter list).
    /// - Throws: `RuntimeError.invalidArgument` when its moments do not match `parameters`.
    public mutating func restore(_ state: State, for parameters: [Tensor]) throws {
        let fits = state.m.isEmpty ? state.v.isEmpty && state.step == 0
            : state.m.count == parameters.count && state.v.count == parameters.count
                && zip(state.m, parameters).allSatisfy { $0.shape == $1.shape } && zip(state.v, parameters).allSatisfy { $0.shape == $1.shape }
        guard fits, state.step >= 0 else {
            throw RuntimeError.invalidArgument("Adam state of \(state.m.count) moments at step \(state.step) does not fit \(parameters.count) parameters")
        }
        step = state.step
        m = state.m.map(\.scalars); v = state.v.map(\.scalars)
    }

    /// What one `update` did.
    public struct StepReport: Sendable {
        /// Global L2 norm of the gradient before clipping.
        public var gradientNorm: Float
        /// Learning rate used.
        public var learningRate: Float
    }

    /// Applies one step to `parameters` with `gradients` (same count and shapes, same order at
    /// every call).
    public mutating func update(parameters: inout [Tensor], gradients: [Tensor]) -> StepReport {
        precondition(parameters.count == gradients.count, "Adam: \(parameters.count) parameters, \(gradients.count) gradients")
        if m.isEmpty {
            m = parameters.map { [Float](repeating: 0, count: $0.count) }
            v = m
        }
        precondition(zip(parameters, gradients).allSatisfy { $0.shape == $1.shape } && m.count == parameters.count,
                     "Adam: parameter shapes changed between steps")
        step += 1
        var sq = 0.0
        for g in gradients { for x in g.scalars { sq += Double(x) * Double(x) } }
        let norm = Float(sq.squareRoot())
        var clip: Float = 1
        if let c = options.clipNorm, norm > c, norm > 0 { clip = c / norm }
        let lr = options.learningRate * options.schedule.factor(step: step)
        let b1 = options.beta1, b2 = options.beta2, eps = options.epsilon, wd = options.weightDecay
        let c1 = 1 - powf(b1, Float(step)), c2 = 1 - powf(b2, Float(step))
        for i in 0..<parameters.count {
            gradients[i].withUnsafeBufferPointer { g in
                parameters[i].withUnsafeMutableBufferPointer { p in
                    m[i].withUnsafeMutableBufferPointer { mm in
                        v[i].withUnsafeMutableBufferPointer { vv in
                            for j in 0..<p.count {
                                let gj = g[j] * clip
                                if wd != 0 { p[j] -= lr * wd * p[j] }
                                mm[j] = b1 * mm[j] + (1 - b1) * gj
                                vv[j] = b2 * vv[j] + (1 - b2) * gj * gj
                                p[j] -= lr * (mm[j] / c1) / ((vv[j] / c2).squareRoot() + eps)
                            }
                        }
                    }
                }
            }
        }
        return StepReport(gradientNorm: norm, learningRate: lr)
    }
}
