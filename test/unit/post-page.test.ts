import { describe, expect, it } from 'vitest'
import { filterRequests, type RequestRow } from '../../src/inspector/stats'
import { wordExcerpt } from '../../src/repositories/blog-repository'
import { postImage } from '../../src/views'

// The pure parts of issue 28's pages: which image sizes a post page offers, where an excerpt
// ends, and the inspector's method filter.

const url = (name: string) => `/u/${name}`
const facts = { imageLoc: 'a.jpg', thumbLoc: 't.webp', imageWidth: 2000, imageHeight: 1000, thumbWidth: 480, thumbHeight: 240 }

describe('postImage', () => {
  it('offers the thumbnail and the image for the slot, and reserves the box', () => {
    expect(postImage(facts, url)).toEqual({
      src: '/u/a.jpg',
      srcset: '/u/t.webp 480w, /u/a.jpg 2000w',
      sizes: '(max-width: 560px) calc(100vw - 78px), 662px',
      width: 2000,
      height: 1000
    })
  })

  it('sizes a tall image by the width it is drawn at (at most 520 px high)', () => {
    const tall = postImage({ ...facts, imageWidth: 1000, imageHeight: 2000, thumbWidth: 240, thumbHeight: 480 }, url)
    expect(tall.sizes).toBe('(max-width: 560px) min(calc(100vw - 78px), 260px), 260px')
  })

  it('offers no still thumbnail for a GIF or WebP (it may move), and no size it does not know', () => {
    expect(postImage({ ...facts, imageLoc: 'a.gif' }, url)).toEqual({ src: '/u/a.gif', width: 2000, height: 1000 })
    expect(postImage({ ...facts, imageWidth: null, imageHeight: null }, url)).toEqual({ src: '/u/a.jpg' })
  })
})

describe('wordExcerpt', () => {
  it('ends at the last whole word, or keeps one long word as cut', () => {
    expect(wordExcerpt('the harbour at dusk, the respo')).toBe('the harbour at dusk, the')
    expect(wordExcerpt('x'.repeat(200))).toBe('x'.repeat(200))
    // Not back past most of it for one short word and a long one.
    expect(wordExcerpt('a ' + 'y'.repeat(198))).toBe('a ' + 'y'.repeat(198))
  })
})

describe('filterRequests by method', () => {
  it('keeps only the requests of that method on the route', () => {
    const row = (method: string, traceId: string) => ({ method, route: '/blogs/new', status: 200, durationMs: 1, traceId }) as RequestRow
    const rows = [row('GET', 'g'), row('POST', 'p')]
    expect(filterRequests(rows, { route: '/blogs/new', method: 'POST' }).map((r) => r.traceId)).toEqual(['p'])
    expect(filterRequests(rows, { route: '/blogs/new' }).map((r) => r.traceId)).toEqual(['g', 'p'])
  })
})
