// @ts-check
// Generated from src/posts/fields.ts and src/accounts/fields.ts by `npm run gen:k6`: do not edit (a test checks it is current).

/** Length limits of the post form fields, in characters. */
export const FIELD_LIMITS = {
  title: {
    min: 2,
    max: 200
  },
  content: {
    min: 2,
    max: 4000
  }
}

/** The file part of the post form. */
export const IMAGE_FIELD = 'image_file'

/** Length limits of a display name (sign-up), in characters. */
export const DISPLAY_NAME_LIMITS = { min: 1, max: 100 }
