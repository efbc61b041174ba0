import type { FastifyInstance } from 'fastify'
import type { Transaction } from 'sequelize'
import type { ReceivedImage } from '../../plugins/image-store'

export interface WriteResult<T> {
  value: T
  /** Stored images the committed change no longer references: remove them after the commit. */
  obsolete: (string | null)[]
}

/**
 * Runs one write request's database work in a transaction, moving the uploaded image (if any)
 * into the store inside it, so row and file live or die together:
 * - work or the move fails: rollback, the new file is removed;
 * - COMMIT fails: the outcome is unknown (the server may have committed), so the new file is
 *   kept and the orphan sweep removes it later if no row points to it;
 * - commit succeeds: files the change replaced or deleted are removed.
 */
export async function writeWithImage<T>(
  app: FastifyInstance,
  image: ReceivedImage | null,
  work: (t: Transaction, imageName: string | null) => Promise<WriteResult<T>>
): Promise<T> {
  const store = app.imageStore
  let imageName: string | null = null
  let result: WriteResult<T>
  let t: Transaction
  try {
    t = await app.sequelize.transaction()
  } catch (err) {
    if (image) await store.discard(image.tempPath)
    throw err
  }
  try {
    if (image) imageName = await store.adopt(image)
    result = await work(t, imageName)
  } catch (err) {
    await t.rollback().catch((rollbackErr: unknown) => app.log.warn({ err: rollbackErr }, 'rollback failed'))
    if (imageName) await store.remove(imageName)
    else if (image) await store.discard(image.tempPath)
    throw err
  }
  try {
    await t.commit()
  } catch (err) {
    if (imageName) app.log.warn({ image: imageName }, 'commit outcome unknown; keeping the new image for the orphan sweep')
    throw err
  }
  for (const name of result.obsolete) {
    if (name) await store.remove(name).catch((err: unknown) => app.log.warn({ err, image: name }, 'could not remove replaced image'))
  }
  return result.value
}
