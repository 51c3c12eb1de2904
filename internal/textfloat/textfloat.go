// Package textfloat reads the sample values of the text exposition format
// exactly and without strconv in the usual case: whole numbers and short
// decimals, which is what clients write and what the store writes back
// (store.appendTextFloat). The ingester reads pushed values with it and the
// store its own lines; both ask strconv for anything else.
package textfloat

// exactPow10 are the powers of ten a float64 holds exactly.
var exactPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// Scan reads the decimal number that starts s, [-]digits[.digits]
// followed by an optional exponent, and returns its value and length. It
// computes only numbers whose significant digits, read as an integer,
// are at most 2^53 and whose decimal exponent is within ±22: one
// correctly rounded multiplication or division of two exactly held
// numbers (the exact case strconv tries first), so the value is
// strconv.ParseFloat's bit for bit. For any other start of s it reports
// false, and the caller asks strconv.
func Scan[S ~string | ~[]byte](s S) (float64, int, bool) {
	i, neg := 0, false
	if len(s) > 0 && s[0] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	digits, exp := 0, 0
	sawDigit, sawDot := false, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			sawDigit = true
			if c == '0' && digits == 0 { // a leading zero
				if sawDot {
					exp--
				}
				continue
			}
			if digits == 19 {
				return 0, 0, false
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if sawDot {
				exp--
			}
			continue
		case c == '.' && !sawDot:
			sawDot = true
			continue
		}
		break
	}
	if !sawDigit {
		return 0, 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		e, start := 0, i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if e > 1000 {
				return 0, 0, false
			}
			e = e*10 + int(s[i]-'0')
		}
		if i == start {
			return 0, 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if mant > 1<<53 || exp > 22 || exp < -22 {
		return 0, 0, false
	}
	f := float64(mant)
	if exp > 0 {
		f *= exactPow10[exp]
	} else if exp < 0 {
		f /= exactPow10[-exp]
	}
	if neg {
		f = -f
	}
	return f, i, true
}

// Whole reports whether s is a whole number written as the store
// writes sample values (store.appendTextFloat, which writes them as
// expfmt and strconv's shortest 'g' format do): from -999999 to 999999
// as a plain integer, without a leading zero ("0" itself, not "-0"); from
// 1e6 to below 1e15 (either sign) as d.ddde+XX, its digits without
// trailing zeros and the exponent in two digits. Below 2^53 two whole
// numbers are two floats, so those digits are the shortest that read back
// as the number. It reports false for any other s, which may still be
// written so: the caller then reads and writes the value itself.
func Whole[S ~string | ~[]byte](s S) bool {
	i := 0
	if len(s) > 0 && s[0] == '-' {
		i = 1
	}
	digits := 0
	for j := i; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
		digits++
	}
	switch {
	case digits == 0:
		return false
	case i+digits == len(s): // a plain integer
		if digits == 1 && s[i] == '0' {
			return i == 0 // "0", not "-0"
		}
		return digits <= 6 && s[i] != '0'
	case digits != 1 || s[i] == '0':
		return false
	}
	// d[.ddd]e+XX: the fraction's digits, without a trailing zero.
	j, frac := i+1, 0
	if s[j] == '.' {
		for j++; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
			frac++
		}
		if frac == 0 || s[j-1] == '0' {
			return false
		}
	}
	if len(s)-j != 4 || s[j] != 'e' || s[j+1] != '+' ||
		s[j+2] < '0' || s[j+2] > '9' || s[j+3] < '0' || s[j+3] > '9' {
		return false
	}
	exp := int(s[j+2]-'0')*10 + int(s[j+3]-'0')
	return exp >= 6 && exp <= 14 && exp >= frac
}

// maxExactDigits is the most significant digits of a decimal that
// Canonical takes. Two decimals of that many digits or fewer differ by at
// least 1e-15 of the larger, while the decimals that read as one normal
// float64 (decimal exponents from -307 to 307) lie within 2^-52 (2.2e-16)
// of its size of each other: no two of them read as the same float64, so
// the digits of one that reads as f are the shortest that read back as f,
// which strconv's shortest format writes.
const maxExactDigits = 15

// Canonical reports whether s is a number written as the store writes
// sample values (store.appendTextFloat, which writes them as expfmt and
// strconv's shortest 'g' format do), told from its text alone: its digits
// are at most maxExactDigits, without trailing zeros after a point, and
// set out as that format sets them out, [-]d[.ddd]e±XX (the exponent in
// two digits at least) when the decimal exponent is below -4 or 6 or
// more, and plainly from 0.0001 to below 1e6 ("0" itself, not "-0"). Every
// s Whole takes, Canonical takes. It reports false for any other s, which
// may still be written so: the caller then reads and writes the value
// itself.
func Canonical[S ~string | ~[]byte](s S) bool {
	i := 0
	if len(s) > 0 && s[0] == '-' {
		i = 1
	}
	whole := digitsAt(s, i)
	if whole == 0 || (whole > 1 && s[i] == '0') {
		return false
	}
	j := i + whole
	if s[i] == '0' { // 0 itself, or 0.ddd down to 0.000ddd
		if j == len(s) {
			return i == 0
		}
		if s[j] != '.' {
			return false
		}
		zeros := 0
		for j++; j < len(s) && s[j] == '0'; j++ {
			zeros++
		}
		frac := digitsAt(s, j)
		return zeros <= 3 && frac > 0 && frac <= maxExactDigits && j+frac == len(s) && s[len(s)-1] != '0'
	}
	frac := 0
	if j < len(s) && s[j] == '.' {
		frac = digitsAt(s, j+1)
		if frac == 0 || s[j+frac] == '0' {
			return false
		}
		j += 1 + frac
	}
	if whole+frac > maxExactDigits {
		return false
	}
	if j == len(s) { // from 1 to below 1e6
		return whole <= 6
	}
	// d[.ddd]e±XX
	if whole != 1 || j+4 > len(s) || s[j] != 'e' || (s[j+1] != '+' && s[j+1] != '-') {
		return false
	}
	n := digitsAt(s, j+2)
	if j+2+n != len(s) || n > 3 || (n == 3 && s[j+2] == '0') {
		return false
	}
	exp := 0
	for k := j + 2; k < len(s); k++ {
		exp = exp*10 + int(s[k]-'0')
	}
	if s[j+1] == '-' {
		return exp > 4 && exp <= 307
	}
	return exp >= 6 && exp <= 307
}

// digitsAt returns how many decimal digits s has from i on.
func digitsAt[S ~string | ~[]byte](s S, i int) int {
	n := 0
	for i+n < len(s) && s[i+n] >= '0' && s[i+n] <= '9' {
		n++
	}
	return n
}
