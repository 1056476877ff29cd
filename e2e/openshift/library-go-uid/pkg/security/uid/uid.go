// Package uid parses the UID and group blocks that OpenShift allocates to a namespace
// (openshift.io/sa.scc.uid-range and friends): "<start>/<size>" or "<start>-<end>".
package uid

import (
	"fmt"
	"strconv"
	"strings"
)

// Block is an inclusive range of IDs.
type Block struct {
	Start uint32
	End   uint32
}

func (b Block) String() string { return fmt.Sprintf("%d/%d", b.Start, b.Size()) }

// Size is the number of IDs in the block.
func (b Block) Size() uint32 { return b.End - b.Start + 1 }

// ParseBlock reads "<start>/<size>" or "<start>-<end>".
func ParseBlock(in string) (Block, error) {
	if start, size, ok := strings.Cut(in, "/"); ok {
		s, err := parseID(start)
		if err != nil {
			return Block{}, fmt.Errorf("block %q: %w", in, err)
		}
		n, err := parseID(size)
		if err != nil || n == 0 {
			return Block{}, fmt.Errorf("block %q: the size must be a positive integer", in)
		}
		end := uint64(s) + uint64(n) - 1
		if end > 1<<32-1 {
			return Block{}, fmt.Errorf("block %q ends past the largest ID", in)
		}
		return Block{Start: s, End: uint32(end)}, nil
	}
	if start, end, ok := strings.Cut(in, "-"); ok {
		s, err := parseID(start)
		if err != nil {
			return Block{}, fmt.Errorf("block %q: %w", in, err)
		}
		e, err := parseID(end)
		if err != nil {
			return Block{}, fmt.Errorf("block %q: %w", in, err)
		}
		if e < s {
			return Block{}, fmt.Errorf("block %q ends before it starts", in)
		}
		return Block{Start: s, End: e}, nil
	}
	return Block{}, fmt.Errorf("block %q is neither <start>/<size> nor <start>-<end>", in)
}

func parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an ID", s)
	}
	return uint32(v), nil
}
