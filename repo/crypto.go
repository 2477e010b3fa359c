package repo

import (
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sealed data is nonce || ciphertext || tag.
const (
	nonceSize  = chacha20poly1305.NonceSizeX // 24
	tagSize    = chacha20poly1305.Overhead   // 16
	sealExtra  = nonceSize + tagSize         // 40
	keySize    = chacha20poly1305.KeySize    // 32
	idKeySize  = 32
	masterSize = keySize + idKeySize
)

// errAuth is returned when sealed data does not authenticate: wrong key or
// damaged data.
var errAuth = errors.New("ciphertext verification failed (damaged or tampered data)")

// masterKey is the repository's secret: an encryption key and the key of
// the blob-id hash.
type masterKey struct {
	Encrypt []byte `json:"encrypt"` // 32 bytes
	ID      []byte `json:"id"`      // 32 bytes
}

func newMasterKey() (*masterKey, error) {
	k := &masterKey{Encrypt: make([]byte, keySize), ID: make([]byte, idKeySize)}
	if _, err := rand.Read(k.Encrypt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(k.ID); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *masterKey) valid() bool {
	return len(k.Encrypt) == keySize && len(k.ID) == idKeySize
}

// crypter seals and opens data and computes blob ids. It is safe for
// concurrent use.
type crypter struct {
	aead   cipher.AEAD
	hasher *blake3.Hasher // keyed template, cloned per use
	pool   sync.Pool
}

func newCrypter(k *masterKey) (*crypter, error) {
	if !k.valid() {
		return nil, errors.New("invalid master key")
	}
	aead, err := chacha20poly1305.NewX(k.Encrypt)
	if err != nil {
		return nil, err
	}
	h, err := blake3.NewKeyed(k.ID)
	if err != nil {
		return nil, err
	}
	c := &crypter{aead: aead, hasher: h}
	c.pool.New = func() any { return c.hasher.Clone() }
	return c, nil
}

// seal appends nonce || ciphertext || tag of plaintext to dst.
func (c *crypter) seal(dst, plaintext []byte) []byte {
	return sealWith(c.aead, dst, plaintext)
}

func sealWith(aead cipher.AEAD, dst, plaintext []byte) []byte {
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		// crypto/rand.Read never fails on supported platforms.
		panic(fmt.Sprintf("read random nonce: %v", err))
	}
	dst = append(dst, nonce[:]...)
	return aead.Seal(dst, nonce[:], plaintext, nil)
}

// open appends the plaintext of sealed to dst.
func (c *crypter) open(dst, sealed []byte) ([]byte, error) {
	return openWith(c.aead, dst, sealed)
}

func openWith(aead cipher.AEAD, dst, sealed []byte) ([]byte, error) {
	if len(sealed) < sealExtra {
		return nil, fmt.Errorf("sealed data too short (%d bytes)", len(sealed))
	}
	out, err := aead.Open(dst, sealed[:nonceSize], sealed[nonceSize:], nil)
	if err != nil {
		return nil, errAuth
	}
	return out, nil
}

// blobID is the keyed BLAKE3 hash of a blob's plaintext.
func (c *crypter) blobID(data []byte) ID {
	h := c.pool.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	c.pool.Put(h)
	return id
}

// FileID is the name of a repository file: the unkeyed BLAKE3-256 of its
// stored bytes.
func FileID(data []byte) ID {
	return ID(blake3.Sum256(data))
}
