package store

// CRC-32 (IEEE) arithmetic for gzip.go: the CRC of a concatenation from
// the CRCs of its parts, so a kept chunk adds its CRC to the stream's
// without reading its text again. Polynomials are in the reflected bit
// order of hash/crc32: bit 31 is x^0.

// crcPoly is the IEEE polynomial, reflected.
const crcPoly = 0xedb88320

// mulModP returns a·b modulo the polynomial.
func mulModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

// xPow2k[k] is x^(2^k) modulo the polynomial.
var xPow2k = func() (t [64]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = mulModP(p, p)
	}
	return t
}()

// shiftOp returns x^(8n) modulo the polynomial: the operator that moves a
// CRC past n more bytes.
func shiftOp(n uint64) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; k, n = k+1, n>>1 {
		if n&1 != 0 {
			p = mulModP(xPow2k[k], p)
		}
	}
	return p
}

// crcCombine returns the CRC of A followed by B, given crcA, crcB and
// shiftOp(len(B)).
func crcCombine(crcA, crcB, op uint32) uint32 { return mulModP(op, crcA) ^ crcB }
