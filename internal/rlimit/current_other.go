//go:build !unix

package rlimit

func current(Resource) uint64 { return Unlimited }
