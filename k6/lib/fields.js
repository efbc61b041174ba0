// @ts-check
// Generated from src/posts/fields.ts by `npm run gen:k6`: do not edit (a test checks it is current).

/** Length limits of the post form fields, in characters. */
export const FIELD_LIMITS = {
  title: {
    min: 2,
    max: 200
  },
  author: {
    min: 1,
    max: 100
  },
  content: {
    min: 2,
    max: 4000
  }
}

/** The file part of the post form. */
export const IMAGE_FIELD = 'image_file'
