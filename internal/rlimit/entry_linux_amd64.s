// The program's entry point on linux/amd64 (see the package doc and entry_linux.go): it
// runs before the Go runtime, with the stack as the kernel set it up (0(SP) argc, then
// argv, NULL, envp, NULL, auxv), and must leave SP as it found it.

#include "textflag.h"

#define SYS_write	1
#define SYS_execve	59
#define SYS_fcntl	72
#define SYS_exit_group	231
#define SYS_prlimit64	302
#define F_SETFD		2
#define FD_CLOEXEC	1
#define EINVAL		22

// func entry()
TEXT ·entry(SB),NOSPLIT|NOFRAME,$0
	MOVQ	0(SP), R12		// argc
	LEAQ	8(SP), R13		// argv
	CMPQ	R12, $7
	JLT	limits
	// argv[1] == marker: the trampoline.
	MOVQ	8(R13), SI
	MOVQ	·marker(SB), DI
	MOVQ	·marker+8(SB), CX
cmpmarker:
	MOVB	(SI), AX
	CMPB	AX, (DI)
	JNE	limits
	INCQ	SI
	INCQ	DI
	DECQ	CX
	JNZ	cmpmarker
	CMPB	(SI), $0
	JEQ	trampoline

limits:
	// needs[0] = needBase[0]; needs[1] = needBase[1] + the writable segment.
	MOVQ	·needBase+0(SB), AX
	MOVQ	AX, ·needs+0(SB)
	LEAQ	runtime·enoptrbss(SB), AX
	LEAQ	runtime·noptrdata(SB), BX
	SUBQ	BX, AX
	ADDQ	·needBase+8(SB), AX
	MOVQ	AX, ·needs+8(SB)

	XORQ	R14, R14		// i: 0 RLIMIT_AS, 1 RLIMIT_DATA
nextlimit:
	// prlimit64(0, resources[i], NULL, &atExec[i])
	LEAQ	·resources(SB), AX
	MOVQ	(AX)(R14*8), R15	// resource
	LEAQ	·atExec(SB), R10
	MOVQ	R14, AX
	SHLQ	$4, AX
	ADDQ	AX, R10			// &atExec[i], kept: a system call preserves all but AX, CX, R11
	XORQ	DI, DI
	MOVQ	R15, SI
	XORQ	DX, DX
	MOVQ	$SYS_prlimit64, AX
	SYSCALL
	CMPQ	AX, $0
	JNE	runtime			// cannot even read it: leave everything as it is
	MOVQ	0(R10), AX		// cur
	MOVQ	8(R10), CX		// max
	LEAQ	·needs(SB), BX
	MOVQ	(BX)(R14*8), BX		// need
	CMPQ	AX, BX
	JCC	done			// cur >= need
	CMPQ	CX, BX
	JCS	toolow			// max < need
	// prlimit64(0, resource, &{max, max}, NULL)
	LEAQ	·scratch(SB), DX
	MOVQ	CX, 0(DX)
	MOVQ	CX, 8(DX)
	XORQ	DI, DI
	MOVQ	R15, SI
	XORQ	R10, R10
	MOVQ	$SYS_prlimit64, AX
	SYSCALL
	CMPQ	AX, $0
	JNE	toolow
	MOVQ	$1, AX
	MOVQ	R14, CX
	SHLQ	CX, AX
	ORQ	AX, ·raisedBits(SB)
done:
	INCQ	R14
	CMPQ	R14, $2
	JLT	nextlimit
	MOVQ	$1, ·ran(SB)
runtime:
	JMP	_rt0_amd64_linux(SB)

toolow:
	// One log line: msgHead msgNames[i] msgIs max msgNeed need msgTail; then exit 51.
	MOVQ	CX, R8			// max
	MOVQ	BX, R9			// need
	LEAQ	·msgBuf(SB), DI
	MOVQ	·msgHead(SB), SI
	MOVQ	·msgHead+8(SB), CX
	CALL	copybytes<>(SB)
	LEAQ	·msgNames(SB), AX
	MOVQ	R14, CX
	SHLQ	$4, CX
	ADDQ	CX, AX
	MOVQ	0(AX), SI
	MOVQ	8(AX), CX
	CALL	copybytes<>(SB)
	MOVQ	·msgIs(SB), SI
	MOVQ	·msgIs+8(SB), CX
	CALL	copybytes<>(SB)
	MOVQ	R8, AX
	CALL	decimal<>(SB)
	MOVQ	·msgNeed(SB), SI
	MOVQ	·msgNeed+8(SB), CX
	CALL	copybytes<>(SB)
	MOVQ	R9, AX
	CALL	decimal<>(SB)
	MOVQ	·msgTail(SB), SI
	MOVQ	·msgTail+8(SB), CX
	CALL	copybytes<>(SB)
	LEAQ	·msgBuf(SB), SI
	MOVQ	DI, DX
	SUBQ	SI, DX
	MOVQ	$2, DI
	MOVQ	$SYS_write, AX
	SYSCALL
	MOVQ	$51, DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL
	HLT

trampoline:
	// envp = argv + (argc+1)*8
	LEAQ	8(R13)(R12*8), R12
	MOVQ	$-1, BX			// error descriptor: none yet
	MOVQ	32(R13), SI		// argv[4]: the error pipe
	CALL	hex<>(SB)
	JNE	einval
	MOVQ	AX, BX
	MOVQ	16(R13), SI		// argv[2]: soft RLIMIT_AS
	CALL	hex<>(SB)
	JNE	einval
	MOVQ	AX, R14
	MOVQ	24(R13), SI		// argv[3]: soft RLIMIT_DATA
	CALL	hex<>(SB)
	JNE	einval
	MOVQ	AX, R15
	MOVQ	·resources+0(SB), R8
	MOVQ	R14, R9
	CALL	setcur<>(SB)
	CMPQ	AX, $0
	JNE	fail
	MOVQ	·resources+8(SB), R8
	MOVQ	R15, R9
	CALL	setcur<>(SB)
	CMPQ	AX, $0
	JNE	fail
	// fcntl(fd, F_SETFD, FD_CLOEXEC)
	MOVQ	BX, DI
	MOVQ	$F_SETFD, SI
	MOVQ	$FD_CLOEXEC, DX
	MOVQ	$SYS_fcntl, AX
	SYSCALL
	CMPQ	AX, $0
	JNE	fail
	// execve(argv[5], &argv[6], envp)
	MOVQ	40(R13), DI
	LEAQ	48(R13), SI
	MOVQ	R12, DX
	MOVQ	$SYS_execve, AX
	SYSCALL
	JMP	fail
einval:
	MOVQ	$-EINVAL, AX
fail:
	// write(fd, &errno, 4); exit_group(127)
	NEGQ	AX
	LEAQ	·scratch(SB), SI
	MOVL	AX, 0(SI)
	MOVQ	BX, DI
	MOVQ	$4, DX
	MOVQ	$SYS_write, AX
	SYSCALL
	MOVQ	$127, DI
	MOVQ	$SYS_exit_group, AX
	SYSCALL
	HLT

// copybytes copies CX bytes from SI to DI, advancing DI.
TEXT copybytes<>(SB),NOSPLIT|NOFRAME,$0
	CLD
	REP; MOVSB
	RET

// decimal writes AX in decimal at DI, advancing DI. Clobbers AX, CX, DX, SI, R11.
TEXT decimal<>(SB),NOSPLIT|NOFRAME,$0
	LEAQ	·digits+24(SB), R11
	MOVQ	$10, CX
decloop:
	XORQ	DX, DX
	DIVQ	CX
	ADDQ	$'0', DX
	DECQ	R11
	MOVB	DX, (R11)
	TESTQ	AX, AX
	JNZ	decloop
	MOVQ	R11, SI
	LEAQ	·digits+24(SB), CX
	SUBQ	R11, CX
	CLD
	REP; MOVSB
	RET

// hex reads the NUL-terminated string at SI as 1 to 16 lower-case hex digits into AX.
// ZF is set when it did (JEQ), clear when the string is not such a number (JNE).
TEXT hex<>(SB),NOSPLIT|NOFRAME,$0
	XORQ	AX, AX
	XORQ	CX, CX
hexloop:
	MOVBQZX	(SI), DX
	TESTQ	DX, DX
	JEQ	hexend
	SUBQ	$'0', DX
	CMPQ	DX, $10
	JCS	hexdigit
	SUBQ	$('a'-'0'), DX
	CMPQ	DX, $6
	JCC	hexbad
	ADDQ	$10, DX
hexdigit:
	SHLQ	$4, AX
	ORQ	DX, AX
	INCQ	SI
	INCQ	CX
	CMPQ	CX, $16
	JHI	hexbad
	JMP	hexloop
hexend:
	CMPQ	CX, $0
	JEQ	hexbad
	CMPQ	CX, CX			// ZF set
	RET
hexbad:
	CMPQ	CX, $-1			// ZF clear (CX is 0 to 17)
	RET

// setcur sets the soft limit of resource R8 to R9, keeping its hard limit; AX is 0 or
// -errno.
TEXT setcur<>(SB),NOSPLIT|NOFRAME,$0
	XORQ	DI, DI
	MOVQ	R8, SI
	XORQ	DX, DX
	LEAQ	·scratch(SB), R10
	MOVQ	$SYS_prlimit64, AX
	SYSCALL
	CMPQ	AX, $0
	JNE	setcurdone
	LEAQ	·scratch(SB), DX
	MOVQ	R9, 0(DX)
	XORQ	DI, DI
	MOVQ	R8, SI
	XORQ	R10, R10
	MOVQ	$SYS_prlimit64, AX
	SYSCALL
setcurdone:
	RET
