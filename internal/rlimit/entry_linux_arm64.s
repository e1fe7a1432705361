// The program's entry point on linux/arm64 (see the package doc and entry_linux.go): it
// runs before the Go runtime, with the stack as the kernel set it up (0(RSP) argc, then
// argv, NULL, envp, NULL, auxv), and must leave RSP as it found it. It uses no register
// the assembler or the runtime reserves (R18, R26-R30 but for BL's link in R30).

#include "textflag.h"

#define SYS_fcntl	25
#define SYS_write	64
#define SYS_exit_group	94
#define SYS_execve	221
#define SYS_prlimit64	261
#define F_SETFD		2
#define FD_CLOEXEC	1
#define EINVAL		22

// func entry()
TEXT ·entry(SB),NOSPLIT|NOFRAME,$0
	MOVD	0(RSP), R19		// argc
	ADD	$8, RSP, R20		// argv
	CMP	$7, R19
	BLT	limits
	// argv[1] == marker: the trampoline.
	MOVD	8(R20), R1
	MOVD	$·marker(SB), R4
	MOVD	0(R4), R2
	MOVD	8(R4), R3
cmpmarker:
	MOVBU	(R1), R4
	MOVBU	(R2), R5
	CMP	R4, R5
	BNE	limits
	ADD	$1, R1
	ADD	$1, R2
	SUBS	$1, R3
	BNE	cmpmarker
	MOVBU	(R1), R4
	CBZ	R4, trampoline

limits:
	// needs[0] = needBase[0]; needs[1] = needBase[1] + the writable segment.
	MOVD	$·needBase(SB), R4
	MOVD	$·needs(SB), R5
	MOVD	0(R4), R6
	MOVD	R6, 0(R5)
	MOVD	$runtime·enoptrbss(SB), R6
	MOVD	$runtime·noptrdata(SB), R7
	SUB	R7, R6, R6
	MOVD	8(R4), R7
	ADD	R7, R6, R6
	MOVD	R6, 8(R5)

	MOVD	$0, R21			// i: 0 RLIMIT_AS, 1 RLIMIT_DATA
nextlimit:
	MOVD	$·resources(SB), R4
	MOVD	(R4)(R21<<3), R22	// resource
	MOVD	$·atExec(SB), R23
	ADD	R21<<4, R23, R23	// &atExec[i]
	// prlimit64(0, resource, NULL, &atExec[i])
	MOVD	$0, R0
	MOVD	R22, R1
	MOVD	$0, R2
	MOVD	R23, R3
	MOVD	$SYS_prlimit64, R8
	SVC
	CBNZ	R0, runtime		// cannot even read it: leave everything as it is
	MOVD	0(R23), R6		// cur
	MOVD	8(R23), R24		// max
	MOVD	$·needs(SB), R4
	MOVD	(R4)(R21<<3), R25	// need
	CMP	R25, R6
	BHS	done			// cur >= need
	CMP	R25, R24
	BLO	toolow			// max < need
	// prlimit64(0, resource, &{max, max}, NULL)
	MOVD	$·scratch(SB), R2
	MOVD	R24, 0(R2)
	MOVD	R24, 8(R2)
	MOVD	$0, R0
	MOVD	R22, R1
	MOVD	$0, R3
	MOVD	$SYS_prlimit64, R8
	SVC
	CBNZ	R0, toolow
	MOVD	$1, R4
	LSL	R21, R4, R4
	MOVD	$·raisedBits(SB), R5
	MOVD	0(R5), R6
	ORR	R4, R6, R6
	MOVD	R6, 0(R5)
done:
	ADD	$1, R21
	CMP	$2, R21
	BLT	nextlimit
	MOVD	$·ran(SB), R5
	MOVD	$1, R6
	MOVD	R6, 0(R5)
runtime:
	JMP	_rt0_arm64_linux(SB)

toolow:
	// One log line: msgHead msgNames[i] msgIs max msgNeed need msgTail; then exit 51.
	MOVD	$·msgBuf(SB), R9	// write cursor
	MOVD	$·msgHead(SB), R4
	BL	copystr<>(SB)
	MOVD	$·msgNames(SB), R4
	ADD	R21<<4, R4, R4
	BL	copystr<>(SB)
	MOVD	$·msgIs(SB), R4
	BL	copystr<>(SB)
	MOVD	R24, R0
	BL	decimal<>(SB)
	MOVD	$·msgNeed(SB), R4
	BL	copystr<>(SB)
	MOVD	R25, R0
	BL	decimal<>(SB)
	MOVD	$·msgTail(SB), R4
	BL	copystr<>(SB)
	MOVD	$·msgBuf(SB), R1
	SUB	R1, R9, R2
	MOVD	$2, R0
	MOVD	$SYS_write, R8
	SVC
	MOVD	$51, R0
	MOVD	$SYS_exit_group, R8
	SVC
	UNDEF

trampoline:
	// envp = argv + (argc+1)*8
	ADD	$1, R19, R4
	ADD	R4<<3, R20, R19
	MOVD	$-1, R21		// error descriptor: none yet
	MOVD	32(R20), R1		// argv[4]: the error pipe
	BL	hex<>(SB)
	CBNZ	R1, einval
	MOVD	R0, R21
	MOVD	16(R20), R1		// argv[2]: soft RLIMIT_AS
	BL	hex<>(SB)
	CBNZ	R1, einval
	MOVD	R0, R22
	MOVD	24(R20), R1		// argv[3]: soft RLIMIT_DATA
	BL	hex<>(SB)
	CBNZ	R1, einval
	MOVD	R0, R23
	MOVD	$·resources(SB), R4
	MOVD	0(R4), R10
	MOVD	R22, R11
	BL	setcur<>(SB)
	CBNZ	R0, fail
	MOVD	$·resources(SB), R4
	MOVD	8(R4), R10
	MOVD	R23, R11
	BL	setcur<>(SB)
	CBNZ	R0, fail
	// fcntl(fd, F_SETFD, FD_CLOEXEC)
	MOVD	R21, R0
	MOVD	$F_SETFD, R1
	MOVD	$FD_CLOEXEC, R2
	MOVD	$SYS_fcntl, R8
	SVC
	CBNZ	R0, fail
	// execve(argv[5], &argv[6], envp)
	MOVD	40(R20), R0
	ADD	$48, R20, R1
	MOVD	R19, R2
	MOVD	$SYS_execve, R8
	SVC
	B	fail
einval:
	MOVD	$-EINVAL, R0
fail:
	// write(fd, &errno, 4); exit_group(127)
	NEG	R0, R0
	MOVD	$·scratch(SB), R1
	MOVW	R0, 0(R1)
	MOVD	R21, R0
	MOVD	$4, R2
	MOVD	$SYS_write, R8
	SVC
	MOVD	$127, R0
	MOVD	$SYS_exit_group, R8
	SVC
	UNDEF

// copystr appends the Go string whose header is at R4 to R9, advancing R9. Clobbers R5-R7.
TEXT copystr<>(SB),NOSPLIT|NOFRAME,$0
	MOVD	0(R4), R5
	MOVD	8(R4), R6
	CBZ	R6, copied
copyloop:
	MOVBU.P	1(R5), R7
	MOVBU.P	R7, 1(R9)
	SUBS	$1, R6
	BNE	copyloop
copied:
	RET

// decimal appends R0 in decimal to R9, advancing R9. Clobbers R0, R5-R7, R10, R11.
TEXT decimal<>(SB),NOSPLIT|NOFRAME,$0
	MOVD	$·digits(SB), R10
	ADD	$24, R10, R10
	MOVD	R10, R11		// end
	MOVD	$10, R5
decloop:
	UDIV	R5, R0, R6		// R6 = R0 / 10
	MSUB	R6, R0, R5, R7		// R7 = R0 - R6*10
	ADD	$'0', R7
	MOVBU.W	R7, -1(R10)
	MOVD	R6, R0
	CBNZ	R0, decloop
decout:
	MOVBU.P	1(R10), R7
	MOVBU.P	R7, 1(R9)
	CMP	R10, R11
	BNE	decout
	RET

// hex reads the NUL-terminated string at R1 as 1 to 16 lower-case hex digits into R0; R1 is
// 0 when it did, 1 when the string is not such a number. Clobbers R2, R3.
TEXT hex<>(SB),NOSPLIT|NOFRAME,$0
	MOVD	$0, R0
	MOVD	$0, R3			// digits read
hexloop:
	MOVBU.P	1(R1), R2
	CBZ	R2, hexend
	SUB	$'0', R2
	CMP	$10, R2
	BLO	hexdigit
	SUB	$('a'-'0'), R2
	CMP	$6, R2
	BHS	hexbad
	ADD	$10, R2
hexdigit:
	LSL	$4, R0
	ORR	R2, R0
	ADD	$1, R3
	CMP	$16, R3
	BHI	hexbad
	B	hexloop
hexend:
	CBZ	R3, hexbad
	MOVD	$0, R1
	RET
hexbad:
	MOVD	$1, R1
	RET

// setcur sets the soft limit of resource R10 to R11, keeping its hard limit; R0 is 0 or
// -errno. Clobbers R1-R3, R8.
TEXT setcur<>(SB),NOSPLIT|NOFRAME,$0
	MOVD	$0, R0
	MOVD	R10, R1
	MOVD	$0, R2
	MOVD	$·scratch(SB), R3
	MOVD	$SYS_prlimit64, R8
	SVC
	CBNZ	R0, setcurdone
	MOVD	$·scratch(SB), R2
	MOVD	R11, 0(R2)
	MOVD	$0, R0
	MOVD	R10, R1
	MOVD	$0, R3
	MOVD	$SYS_prlimit64, R8
	SVC
setcurdone:
	RET
