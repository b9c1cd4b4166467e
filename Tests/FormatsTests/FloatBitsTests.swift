import Testing
import Formats

/// The narrow float conversions define file bytes, so they are checked against bit patterns
/// from the IEEE 754 / bfloat16 / OCP FP8 definitions (exact equality: no rounding slack exists).
@Suite struct FloatBitsTests {
    @Test func halfKnownPatterns() {
        #expect(FloatBits.float(fromHalf: 0x3c00) == 1)
        #expect(FloatBits.float(fromHalf: 0xc000) == -2)
        #expect(FloatBits.float(fromHalf: 0x7bff) == 65504)
        #expect(FloatBits.float(fromHalf: 0x0001) == Float(sign: .plus, exponent: -24, significand: 1))
        #expect(FloatBits.float(fromHalf: 0x7c00) == .infinity)
        #expect(FloatBits.float(fromHalf: 0x7e00).isNaN)
        #expect(FloatBits.half(from: 1) == 0x3c00)
        #expect(FloatBits.half(from: 65520) == 0x7c00)  // halfway to the next binade rounds up to inf
        // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even gives 1.
        #expect(FloatBits.half(from: 1 + Float(sign: .plus, exponent: -11, significand: 1)) == 0x3c00)
    }

    @Test func bfloat16RoundsToNearestEven() {
        #expect(FloatBits.bfloat16(from: 1) == 0x3f80)
        #expect(FloatBits.float(fromBFloat16: 0x3f80) == 1)
        // 0x3f808000 is exactly halfway between 0x3f80 and 0x3f81: ties to even keeps 0x3f80.
        #expect(FloatBits.bfloat16(from: Float(bitPattern: 0x3f80_8000)) == 0x3f80)
        // 0x3f818000 is halfway between 0x3f81 and 0x3f82: ties to even goes up to 0x3f82.
        #expect(FloatBits.bfloat16(from: Float(bitPattern: 0x3f81_8000)) == 0x3f82)
        #expect(FloatBits.bfloat16(from: Float(bitPattern: 0x3f80_8001)) == 0x3f81)
        // NaN: quiet bit set, sign and top payload kept (gguf-py rule).
        #expect(FloatBits.bfloat16(from: Float(bitPattern: 0x7f80_0001)) == 0x7fc0)
        #expect(FloatBits.bfloat16(from: Float(bitPattern: 0xff81_0000)) == 0xffc1)
    }

    @Test func f8Formats() {
        // E4M3FN: 0x38 = 0.0111.000 = 2^0 = 1; 0x7e = 448 (largest); 0x7f NaN; 0x01 = 2^-9.
        #expect(FloatBits.float(fromF8E4M3: 0x38) == 1)
        #expect(FloatBits.float(fromF8E4M3: 0x7e) == 448)
        #expect(FloatBits.float(fromF8E4M3: 0x7f).isNaN)
        #expect(FloatBits.float(fromF8E4M3: 0x01) == Float(sign: .plus, exponent: -9, significand: 1))
        #expect(FloatBits.float(fromF8E4M3: 0xb8) == -1)
        // E5M2: 0x3c = 1, 0x7b = 57344 (largest finite), 0x7c = inf.
        #expect(FloatBits.float(fromF8E5M2: 0x3c) == 1)
        #expect(FloatBits.float(fromF8E5M2: 0x7b) == 57344)
        #expect(FloatBits.float(fromF8E5M2: 0x7c) == .infinity)
    }
}
